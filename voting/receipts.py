"""Ballot receipts and the public "check my ballot" computation.

A receipt names the ballot identifier, the log and leaf index of the ballot's entry, the entry's hash and
the newest signed tree head that includes it (a head is signed on the spot if none covers the entry yet).
``check_receipt`` recomputes, from the database alone, everything a third party needs: the entry at that
index, its hash, the inclusion proof against the latest signed head and the proof's verification, the
consistency of the receipt's head with the latest head, and whether this entry is still the ballot's
latest version (a later ``ballot.replaced`` supersedes it) inside the voting window. Everything is returned
as data (hex strings) so the page can show the proof next to the verdict.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
from sqlmodel import Session

from app.i18n import gettext as _
from voting import audit, heads, keys
from voting.merkle import leaf_hash, verify_consistency, verify_inclusion
from voting.models import Ballot, LogEntry, Process

FORMAT = "mitmachen/receipt/v1"
BALLOT_TYPES = ("ballot.cast", "ballot.replaced")
MAX_RECEIPT_BYTES = 8192
MAX_INDEX = 2**53 - 1
LOG_RE = re.compile(r"^(?:process:[1-9][0-9]{0,9}|platform)$")
BALLOT_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
HEX32_RE = re.compile(r"^[0-9a-f]{64}$")


class ReceiptError(ValueError):
    """The receipt cannot be read; ``code`` is stable (the page translates it)."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(message or code)
        self.code = code


@dataclass(frozen=True)
class Receipt:
    ballot: str
    index: int
    log_id: str | None = None
    entry_hash: str | None = None
    head: dict[str, Any] | None = None


def receipt(db: Session, *, log_id: str, index: int, key: keys.SigningKey | None = None) -> dict[str, Any]:
    """The receipt of the ballot entry at ``index`` (in the caller's transaction; may sign a head)."""
    row = _entry(db, log_id, index)
    if row is None:
        raise LookupError(f"log {log_id} has no entry {index}")
    head = heads.latest_head(db, log_id)
    if head is None or head.size <= index:
        head = heads.sign_head(db, log_id=log_id, reason="receipt", key=key)
    return receipt_of(
        log_id=log_id, index=index, entry=bytes(row.entry), leaf=bytes(row.leaf_hash), head=head
    )


def receipt_of(*, log_id: str, index: int, entry: bytes, leaf: bytes, head: Any) -> dict[str, Any]:
    """The receipt's fields from the entry's bytes, its leaf hash and a signed head that covers it."""
    decoded = audit.decode(entry)
    payload = decoded.get("payload") or {}
    return {
        "format": FORMAT,
        "log": log_id,
        "index": index,
        "type": decoded.get("type"),
        "ballot": payload.get("ballot"),
        "scope": payload.get("scope"),
        "version": payload.get("version"),
        "entry_hash": leaf.hex(),
        "head": heads.head_json(head),
    }


def _entry(db: Session, log_id: str, index: int) -> LogEntry | None:
    return db.execute(_ENTRY, {"log_id": log_id, "idx": index}).scalar_one_or_none()


_ENTRY = select(LogEntry).where(LogEntry.log_id == bindparam("log_id"), LogEntry.idx == bindparam("idx"))


def receipt_head(receipt: dict[str, Any]) -> dict[str, Any]:
    """The tree head of a receipt as {size, root, timestamp?, signature?} whatever its source's shape."""
    head = receipt.get("head") or receipt.get("tree_head") or {}
    if not isinstance(head, dict):
        head = {}
    return {
        "size": head.get("size", head.get("tree_size", receipt.get("tree_size"))),
        "root": head.get("root", head.get("root_hash", receipt.get("root"))),
        "timestamp": head.get("timestamp"),
        "signature": head.get("signature"),
        "key_id": head.get("key_id"),
    }


def receipt_mail(*, process: Process, receipt: dict[str, Any], check_url: str) -> tuple[str, str]:
    """Subject and plain-text body of the receipt e-mail (no selection in it: the mail is not secret)."""
    head = receipt_head(receipt)
    subject = _("Your ballot receipt: %(title)s", title=process.title)
    lines = [
        _("Thank you for voting in “%(title)s”.", title=process.title),
        "",
        _("Keep this receipt to check that your ballot is in the public log:"),
        "",
        f"{_('Ballot ID')}: {receipt['ballot']}",
        f"{_('Version')}: {receipt['version']}",
        f"{_('Leaf index')}: {receipt['index']}",
        f"{_('Entry hash')}: {receipt['entry_hash']}",
        f"{_('Tree size')}: {head['size']}",
        f"{_('Root hash')}: {head['root']}",
        "",
        _("You can change your ballot until voting closes; only the last version counts."),
        check_url,
    ]
    return subject, "\n".join(lines)


# --- parsing what a visitor pasted or typed ---------------------------------------------------------------


def _index(value: Any) -> int:
    if isinstance(value, bool):
        raise ReceiptError("bad_index")
    if isinstance(value, str):
        value = value.strip()
        if not value.isdigit() or len(value) > 16:
            raise ReceiptError("bad_index")
        value = int(value)
    if not isinstance(value, int) or not 0 <= value <= MAX_INDEX:
        raise ReceiptError("bad_index")
    return value


def _ballot(value: Any) -> str:
    if not isinstance(value, str) or not BALLOT_RE.match(value.strip()):
        raise ReceiptError("bad_ballot")
    return value.strip()


def _head(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ReceiptError("bad_head")
    try:
        head = {
            "log": str(value["log"]),
            "size": _index(value["size"]),
            "root": str(value["root"]).lower(),
            "timestamp": str(value["timestamp"])[:40],
            "signature": str(value.get("signature", "")).lower()[:256],
            "key_id": str(value.get("key_id", "")).lower()[:64],
        }
    except (KeyError, TypeError) as exc:
        raise ReceiptError("bad_head") from exc
    if not HEX32_RE.match(head["root"]) or not LOG_RE.match(head["log"]):
        raise ReceiptError("bad_head")
    return head


def parse_receipt(raw: str | dict[str, Any]) -> Receipt:
    """A receipt from pasted JSON (or a dict); raises ReceiptError with a stable code."""
    if isinstance(raw, str):
        if len(raw.encode("utf-8")) > MAX_RECEIPT_BYTES:
            raise ReceiptError("too_long")
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise ReceiptError("not_json") from exc
    if not isinstance(raw, dict):
        raise ReceiptError("not_json")
    log_id = raw.get("log")
    if log_id is not None and (not isinstance(log_id, str) or not LOG_RE.match(log_id)):
        raise ReceiptError("bad_log")
    entry_hash = raw.get("entry_hash")
    if entry_hash is not None:
        if not isinstance(entry_hash, str) or not HEX32_RE.match(entry_hash.strip().lower()):
            raise ReceiptError("bad_hash")
        entry_hash = entry_hash.strip().lower()
    head = _head(raw.get("head"))
    if head is not None and log_id is not None and head["log"] != log_id:
        raise ReceiptError("bad_head")
    return Receipt(_ballot(raw.get("ballot")), _index(raw.get("index")), log_id, entry_hash, head)


def manual_receipt(ballot: str, index: str) -> Receipt:
    """A receipt from the two fields of the form (ballot identifier and leaf index)."""
    return Receipt(_ballot(ballot), _index(index))


# --- the check ------------------------------------------------------------------------------------------


def _log_of_ballot(db: Session, ballot_uid: str) -> str | None:
    process_id = db.execute(
        select(Ballot.process_id).where(Ballot.ballot_uid == ballot_uid)
    ).scalar_one_or_none()
    return audit.process_log(process_id) if process_id is not None else None


def _first_of_type(db: Session, log_id: str, entry_type: str) -> int | None:
    stmt = (
        select(LogEntry.idx)
        .where(LogEntry.log_id == log_id, LogEntry.entry_type == entry_type)
        .order_by(LogEntry.idx)
        .limit(1)
    )
    value = db.execute(stmt).scalar_one_or_none()
    return int(value) if value is not None else None


def _later_versions(db: Session, log_id: str, ballot_uid: str, index: int) -> list[int]:
    """Indices of later ``ballot.replaced`` entries for the same ballot identifier."""
    stmt = (
        select(LogEntry.idx, LogEntry.entry)
        .where(LogEntry.log_id == log_id, LogEntry.entry_type == "ballot.replaced", LogEntry.idx > index)
        .order_by(LogEntry.idx)
        .execution_options(yield_per=1000)
    )
    out = []
    for idx, raw in db.execute(stmt):
        payload = audit.decode(bytes(raw)).get("payload") or {}
        if payload.get("ballot") == ballot_uid:
            out.append(int(idx))
    return out


def check_receipt(
    db: Session, receipt_: Receipt | dict[str, Any] | str, *, key: keys.SigningKey | None = None
) -> dict[str, Any]:
    """Everything the check page shows: the verdict and the data to recompute it.

    ``status`` is one of ``not_found`` (no such ballot entry), ``mismatch`` (the entry differs from the
    receipt), ``pending`` (no signed head covers the entry yet), ``counted`` (the latest version, the vote
    is closed), ``will_count`` (the latest version so far; the vote is still open), ``superseded`` (a later
    version replaced it) or ``outside_window``. ``ok`` is true when the entry is in the log as the receipt
    says and every proof and signature verifies."""
    r = receipt_ if isinstance(receipt_, Receipt) else parse_receipt(receipt_)
    log_id = r.log_id or _log_of_ballot(db, r.ballot)
    out: dict[str, Any] = {"ballot": r.ballot, "index": r.index, "log": log_id, "ok": False, "problems": []}
    key = key or keys.signing_key()
    out["key_id"] = key.key_id
    row = _entry(db, log_id, r.index) if log_id else None
    if row is None:
        out["status"] = "not_found"
        out["problems"].append("not_in_log")
        return out
    raw = bytes(row.entry)
    entry = audit.decode(raw)
    payload = entry.get("payload") or {}
    leaf = leaf_hash(raw)
    out.update(
        entry=entry,
        entry_text=raw.decode("utf-8"),
        entry_hash=leaf.hex(),
        type=entry.get("type"),
        version=payload.get("version"),
        scope=payload.get("scope"),
    )
    if entry.get("type") not in BALLOT_TYPES or payload.get("ballot") != r.ballot:
        out["problems"].append("not_this_ballot")
    if leaf != bytes(row.leaf_hash):
        out["problems"].append("stored_hash_differs")
    if r.entry_hash is not None and r.entry_hash != leaf.hex():
        out["problems"].append("hash_differs")
    if out["problems"]:
        out["status"] = "mismatch"
        return out

    head = heads.latest_head(db, log_id)
    if head is None or head.size <= r.index:
        out["status"] = "pending"
        out["problems"].append("no_head_yet")
        return out
    head_data = heads.head_json(head)
    proof = audit.prove_inclusion(db, log_id, r.index, head.size)
    out["head"] = head_data
    out["head_signature_valid"] = head.key_id == key.key_id and heads.verify_head_json(head_data, key.public)
    out["proof"] = [p.hex() for p in proof]
    out["proof_valid"] = verify_inclusion(raw, r.index, head.size, proof, bytes(head.root))
    if not out["head_signature_valid"]:
        out["problems"].append("bad_signature")
    if not out["proof_valid"]:
        out["problems"].append("bad_proof")

    if r.head is not None:
        old = r.head
        out["receipt_head"] = old
        out["receipt_head_signature_valid"] = old["key_id"] == key.key_id and heads.verify_head_json(
            old, key.public
        )
        if old["size"] > head.size or old["size"] <= r.index:
            out["consistency_valid"] = False
        else:
            consistency = audit.prove_consistency(db, log_id, old["size"], head.size)
            out["consistency"] = [p.hex() for p in consistency]
            out["consistency_valid"] = verify_consistency(
                old["size"], head.size, bytes.fromhex(old["root"]), bytes(head.root), consistency
            )
        if not out["receipt_head_signature_valid"]:
            out["problems"].append("bad_receipt_signature")
        if not out["consistency_valid"]:
            out["problems"].append("inconsistent")

    later = _later_versions(db, log_id, r.ballot, r.index)
    opened = _first_of_type(db, log_id, "process.opened")
    closed = _first_of_type(db, log_id, "process.closed")
    out["superseded_by"] = later[-1] if later else None
    out["opened_index"], out["closed_index"] = opened, closed
    in_window = opened is not None and opened < r.index and (closed is None or r.index < closed)
    if later:
        out["status"] = "superseded"
    elif not in_window:
        out["status"] = "outside_window"
    else:
        out["status"] = "counted" if closed is not None else "will_count"
    out["ok"] = not out["problems"]
    return out
