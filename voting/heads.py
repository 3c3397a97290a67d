"""Signed tree heads: the platform's Ed25519 signature over (log, size, root, timestamp).

A head is signed at each vote close, at least every N minutes while a vote is open (``maybe_sign_due``,
called after appends and by ``mitmachen log sign --due`` from cron), on demand (``mitmachen log sign``, an
audit bundle download, a receipt for an entry no head covers yet). Every head is kept and published: any
two of them can be checked for consistency (``/log/consistency``), so the operator cannot show different
logs to different people without the signatures giving it away.

The signed statement is canonical JSON (``statement``); its format is defined once, in
``voting.verifier.head_statement``, which the standalone verifier uses to check the signatures.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
from sqlmodel import Session

from app.database import utcnow
from voting import audit, keys
from voting.models import SignedTreeHead
from voting.verifier import HEAD_STATEMENT_TYPE, head_statement

STATEMENT_TYPE = HEAD_STATEMENT_TYPE
REASONS = {
    "close": "the vote closed",
    "publish": "the results were published",
    "interval": "the regular signature while a vote is open",
    "demand": "signed on demand",
    "receipt": "a voter's receipt needed a head that includes the ballot",
    "bundle": "an audit bundle was built",
}


def statement(*, log_id: str, size: int, root: bytes, timestamp: dt.datetime | str) -> bytes:
    """The exact bytes that are signed (the verifier's ``head_statement``: one definition for both)."""
    when = timestamp if isinstance(timestamp, str) else audit.format_time(timestamp)
    return head_statement(log_id=log_id, size=int(size), root=bytes(root), timestamp=when)


def sign_head(
    db: Session,
    *,
    log_id: str,
    reason: str,
    key: keys.SigningKey | None = None,
    at: dt.datetime | None = None,
) -> SignedTreeHead:
    """Sign the log's current (size, root) in the caller's transaction (never commits).

    Takes the log's append lock first, so heads are signed in the order of the log's growth and a head
    never names a size that a concurrent transaction has not committed yet."""
    if reason not in REASONS:
        raise ValueError(f"unknown reason {reason!r}; one of {', '.join(REASONS)}")
    key = key or keys.signing_key()
    audit.lock_state(db, log_id)
    size = audit.size(db, log_id)
    root = audit.root(db, log_id, size)
    timestamp = (at or utcnow()).astimezone(dt.UTC)
    signature = key.sign(statement(log_id=log_id, size=size, root=root, timestamp=timestamp))
    head = SignedTreeHead(
        log_id=log_id,
        size=size,
        root=root,
        timestamp=timestamp,
        signature=signature,
        key_id=key.key_id,
        reason=reason,
    )
    db.add(head)
    db.flush()
    return head


@dataclass(frozen=True)
class Head:
    """A signed head's fields without the ORM object (what ``head_json`` reads)."""

    log_id: str
    size: int
    root: bytes
    timestamp: dt.datetime
    signature: bytes
    key_id: str
    reason: str


def head_values(
    appended: audit.Appended, *, reason: str, key: keys.SigningKey | None = None
) -> dict[str, Any]:
    """The row of a head of the log as it is right after ``appended``, signed now: the same head
    ``sign_head`` would sign, without reading the state and the tree back. Only for an append of the
    caller's transaction, which still holds the log's lock (so its size and root are the log's current
    ones) and writes the row (``audit.append(…, writes=…)``)."""
    if reason not in REASONS:
        raise ValueError(f"unknown reason {reason!r}; one of {', '.join(REASONS)}")
    if len(appended.root) != 32:
        raise ValueError("the append carries no root")
    key = key or keys.signing_key()
    timestamp = utcnow()
    size = appended.index + 1
    return dict(
        log_id=appended.log_id,
        size=size,
        root=appended.root,
        timestamp=timestamp,
        signature=key.sign(
            statement(log_id=appended.log_id, size=size, root=appended.root, timestamp=timestamp)
        ),
        key_id=key.key_id,
        reason=reason,
    )


def latest_head(db: Session, log_id: str) -> SignedTreeHead | None:
    return db.execute(_LATEST_HEAD, {"log_id": log_id}).scalar_one_or_none()


# Built once: every receipt reads it.
_LATEST_HEAD = (
    select(SignedTreeHead)
    .where(SignedTreeHead.log_id == bindparam("log_id"))
    .order_by(SignedTreeHead.size.desc(), SignedTreeHead.timestamp.desc(), SignedTreeHead.id.desc())
    .limit(1)
)


def head_of_size(db: Session, log_id: str, size: int) -> SignedTreeHead | None:
    """The newest head of exactly ``size`` entries."""
    stmt = (
        select(SignedTreeHead)
        .where(SignedTreeHead.log_id == log_id, SignedTreeHead.size == size)
        .order_by(SignedTreeHead.timestamp.desc(), SignedTreeHead.id.desc())
        .limit(1)
    )
    return db.execute(stmt).scalar_one_or_none()


def list_heads(db: Session, log_id: str, *, start: int = 0, limit: int | None = None) -> list[SignedTreeHead]:
    """Heads in the order the log grew (size, then time), from position ``start``."""
    stmt = (
        select(SignedTreeHead)
        .where(SignedTreeHead.log_id == log_id)
        .order_by(SignedTreeHead.size, SignedTreeHead.timestamp, SignedTreeHead.id)
        .offset(start)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(db.execute(stmt).scalars())


def count_heads(db: Session, log_id: str) -> int:
    from sqlalchemy import func

    stmt = select(func.count()).select_from(SignedTreeHead).where(SignedTreeHead.log_id == log_id)
    return int(db.execute(stmt).scalar_one())


def maybe_sign_due(
    db: Session,
    *,
    log_id: str,
    every_minutes: int,
    key: keys.SigningKey | None = None,
    now: dt.datetime | None = None,
) -> SignedTreeHead | None:
    """Sign a head if the log grew since its last head and that head is at least ``every_minutes`` old
    (or there is none). Returns the new head, or None when none was due."""
    now = now or utcnow()
    size = audit.size(db, log_id)
    if size == 0:
        return None
    last = latest_head(db, log_id)
    if last is not None:
        if last.size >= size:
            return None
        if now - last.timestamp < dt.timedelta(minutes=every_minutes):
            return None
    return sign_head(db, log_id=log_id, reason="interval", key=key, at=now)


def ensure_head(
    db: Session, *, log_id: str, reason: str, key: keys.SigningKey | None = None
) -> SignedTreeHead:
    """The latest head if it covers the whole log, otherwise a new one (signed for ``reason``)."""
    last = latest_head(db, log_id)
    if last is not None and last.size >= audit.size(db, log_id):
        return last
    return sign_head(db, log_id=log_id, reason=reason, key=key)


def head_json(head: SignedTreeHead | Head) -> dict[str, Any]:
    """The published form of a head (hex for bytes, ISO 8601 UTC timestamp)."""
    return {
        "log": head.log_id,
        "size": int(head.size),
        "root": bytes(head.root).hex(),
        "timestamp": audit.format_time(head.timestamp),
        "signature": bytes(head.signature).hex(),
        "key_id": head.key_id,
        "reason": head.reason,
    }


def verify_head_json(data: dict[str, Any], public_key: Any) -> bool:
    """Check a published head's signature with an Ed25519 public key (never raises)."""
    from cryptography.exceptions import InvalidSignature

    try:
        message = statement(
            log_id=str(data["log"]),
            size=int(data["size"]),
            root=bytes.fromhex(str(data["root"])),
            timestamp=str(data["timestamp"]),
        )
        public_key.verify(bytes.fromhex(str(data["signature"])), message)
    except (InvalidSignature, KeyError, TypeError, ValueError):
        return False
    return True
