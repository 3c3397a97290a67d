"""The independent verifier of an audit bundle: ``mitmachen verify BUNDLE`` and ``python verify.py BUNDLE``.

It re-checks a bundle (a zip file or a folder, format in docs/verifiability.md) from its files alone,
without the platform's database or code: it imports only the standard library, ``cryptography`` and the
pure modules ``voting.merkle``, ``voting.selection``, ``voting.verifier_rules`` and ``voting.verifier_replay``
(the replay of a process log; ``voting/bundle.py`` concatenates those five files into the bundle's
single-file ``verify.py``).

Checks, in this order (the first failure is reported, naming the entry or head):

1. every entry: its position, its ``index``, its hash, canonical JSON, the log it names;
2. every signed head: the key id, the Ed25519 signature, the Merkle root recomputed from the entries, the
   order of the heads, an RFC 9162 consistency proof between consecutive heads, and that the last head
   covers every entry;
3. the process (process bundles): ``process.opened`` before any ballot, ballots only between
   ``process.opened`` and ``process.closed`` (by position and by time), one ballot per identifier
   (a second version only as ``ballot.replaced`` with the next version number), every selection valid
   under the ballot rules logged in ``process.opened`` and in canonical form, the ballot counts logged at
   the close, the tally recomputed with the declared rule (verifier_rules, an implementation independent
   of the platform's) and equal to every ``tally.published`` entry and to ``result.json``, and
   ``projects.json`` / ``rule.json`` equal to what the log says.

Exit status: 0 valid (a summary is printed), 1 invalid (the first failure is printed), 2 unreadable.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from voting.merkle import (
    EMPTY_ROOT,
    CompactRange,
    canonical_json,
    consistency_proof_from_subtrees,
    leaf_hash,
    subtree_getter_from_perfect,
    verify_consistency,
)
from voting.verifier_replay import Invalid, Replay, _same_result, parse_time
from voting.verifier_rules import TallyError

BUNDLE_FORMAT = "mitmachen/audit-bundle"
BUNDLE_VERSION = 1
HEAD_STATEMENT_TYPE = "mitmachen/tree-head/v1"
BASE_FILES = ("bundle.json", "entries.jsonl", "heads.json", "public_key.pem")
PROCESS_FILES = ("projects.json", "rule.json", "result.json")
ENTRY_KEYS = {"index", "log", "type", "at", "payload"}
MAX_LINE = 1 << 20  # bytes of one entries.jsonl line
MAX_JSON_FILE = 256 << 20


class Unreadable(Exception):
    """The bundle cannot be read at all (exit status 2)."""


def head_statement(*, log_id: str, size: int, root: bytes, timestamp: str) -> bytes:
    """The exact bytes the platform signs for a tree head (canonical JSON)."""
    return canonical_json(
        {
            "type": HEAD_STATEMENT_TYPE,
            "log": log_id,
            "size": int(size),
            "root": root.hex(),
            "timestamp": timestamp,
        }
    )


def key_id(public_key: Ed25519PublicKey) -> str:
    """SHA-256 of the raw 32-byte public key, hex."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


# --- reading a bundle (zip or folder) ---------------------------------------------------------------------


class Source:
    """The files of a bundle, from a zip archive or a folder."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.zip: zipfile.ZipFile | None = None
        if self.path.is_dir():
            return
        try:
            self.zip = zipfile.ZipFile(self.path)
        except (OSError, zipfile.BadZipFile) as exc:
            raise Unreadable(f"{self.path}: neither a folder nor a readable zip file ({exc})") from exc

    def has(self, name: str) -> bool:
        if self.zip is not None:
            return name in self.zip.namelist()
        return (self.path / name).is_file()

    def open(self, name: str) -> BinaryIO:
        if not self.has(name):
            raise Unreadable(f"the bundle lacks {name}")
        try:
            if self.zip is not None:
                return self.zip.open(name)  # type: ignore[return-value]
            return open(self.path / name, "rb")
        except (OSError, zipfile.BadZipFile, RuntimeError) as exc:
            raise Unreadable(f"cannot read {name}: {exc}") from exc

    def read_json(self, name: str) -> Any:
        with self.open(name) as fh:
            try:
                data = fh.read(MAX_JSON_FILE + 1)
            except (OSError, zipfile.BadZipFile) as exc:
                raise Unreadable(f"cannot read {name}: {exc}") from exc
        if len(data) > MAX_JSON_FILE:
            raise Unreadable(f"{name} is too large")
        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise Unreadable(f"{name} is not valid JSON: {exc}") from exc

    def lines(self, name: str) -> Iterator[bytes]:
        with self.open(name) as fh:
            while True:
                try:
                    line = fh.readline(MAX_LINE + 1)
                except (OSError, zipfile.BadZipFile) as exc:
                    raise Unreadable(f"cannot read {name}: {exc}") from exc
                if not line:
                    return
                yield line

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()


# --- the Merkle tree of the bundle's entries ----------------------------------------------------------------


class Tree:
    """Every perfect subtree hash of the entries, one bytearray per level (64 bytes per entry in all)."""

    def __init__(self) -> None:
        self.edge = CompactRange()
        self.levels: list[bytearray] = []

    def append(self, leaf: bytes) -> None:
        for level, _index, node in self.edge.append(leaf):
            if level == len(self.levels):
                self.levels.append(bytearray())
            self.levels[level] += node

    @property
    def size(self) -> int:
        return self.edge.size

    def perfect(self, level: int, index: int) -> bytes:
        return bytes(self.levels[level][32 * index : 32 * index + 32])

    def root(self, size: int) -> bytes:
        if size == 0:
            return EMPTY_ROOT
        return subtree_getter_from_perfect(self.perfect)(0, size)

    def consistency(self, old: int, new: int) -> list[bytes]:
        return consistency_proof_from_subtrees(old, new, subtree_getter_from_perfect(self.perfect))


# --- the verification -----------------------------------------------------------------------------------


@dataclass
class Report:
    log_id: str = ""
    process: int | None = None
    entries: int = 0
    heads: int = 0
    key_id: str = ""
    first_head: str = ""
    last_head: str = ""
    ballots: dict[int, int] = field(default_factory=dict)
    replaced: int = 0
    paper: int = 0
    closed: bool = False
    results: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [
            f"VALID: {self.log_id}: {self.entries} entries, {self.heads} signed tree heads "
            f"(Ed25519 key {self.key_id[:16]}…), latest head {self.last_head}",
        ]
        if self.process is not None:
            total = sum(self.ballots.values())
            lines.append(
                f"process {self.process}: {total} ballots in {len(self.ballots)} ballot scope(s) "
                f"({self.replaced} replacements, {self.paper} paper ballot entries); "
                + ("voting closed" if self.closed else "voting still open")
            )
            for r in self.results:
                lines.append(
                    f"  scope {r['scope']}: rule {r['rule']}, {r['ballots']} ballots, funded {r['selected']} "
                    f"for {r['cost_cents']} of {r['budget_cents']} cents: equal to the published result"
                )
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)


def _load_key(source: Source) -> Ed25519PublicKey:
    with source.open("public_key.pem") as fh:
        data = fh.read(64 * 1024)
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise Unreadable(f"public_key.pem is not a PEM public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise Unreadable("public_key.pem is not an Ed25519 public key")
    return key


def _check_entries(source: Source, log_id: str, tree: Tree, replay: Replay | None) -> Invalid | None:
    """Read entries.jsonl once: integrity failures raise at once; the first replay failure is returned
    (reported after the heads, which prove what the entries are)."""
    deferred: Invalid | None = None
    for n, line in enumerate(source.lines("entries.jsonl")):
        where = f"entry {n}"
        if len(line) > MAX_LINE or not line.endswith(b"\n"):
            raise Invalid("entry", where, "line too long or not terminated (entries.jsonl damaged)")
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or set(record) != {"index", "leaf_hash", "entry"}:
                raise ValueError("fields")
            raw = base64.b64decode(record["entry"], validate=True)
        except (ValueError, TypeError, binascii.Error):
            raise Invalid("entry", where, "line is not an entry record {index, leaf_hash, entry}") from None
        if record["index"] != n:
            raise Invalid(
                "order",
                where,
                f"line {n + 1} holds index {record['index']!r}, expected {n} (an entry is missing, duplicated or "
                "out of order)",
            )
        leaf = leaf_hash(raw)
        if record["leaf_hash"] != leaf.hex():
            raise Invalid(
                "hash", where, "the entry's hash does not match its content (the entry was altered)"
            )
        try:
            entry = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise Invalid("entry", where, "the entry is not JSON") from None
        if not isinstance(entry, dict) or set(entry) != ENTRY_KEYS:
            raise Invalid("entry", where, "the entry lacks index, log, type, at or payload")
        try:
            canonical = canonical_json(entry)
        except (TypeError, ValueError):
            canonical = b""
        if canonical != raw:
            raise Invalid("entry", where, "the entry is not in canonical JSON")
        if entry["index"] != n:
            raise Invalid("order", where, f"the entry says it is entry {entry['index']!r}")
        if entry["log"] != log_id:
            raise Invalid("entry", where, f"the entry belongs to log {entry['log']!r}, not {log_id!r}")
        tree.append(leaf)
        if replay is not None and deferred is None:
            try:
                replay.step(n, str(entry["type"]), entry["at"], entry["payload"])
            except Invalid as exc:
                deferred = exc
    return deferred


def _check_heads(
    heads: Any, log_id: str, key: Ed25519PublicKey, kid: str, tree: Tree
) -> list[dict[str, Any]]:
    if not isinstance(heads, list) or not heads:
        raise Invalid("heads", "heads.json", "no signed tree heads")
    previous: dict[str, Any] | None = None
    for k, head in enumerate(heads):
        where = f"head {k}"
        try:
            size, root = head["size"], bytes.fromhex(head["root"])
            signature = bytes.fromhex(head["signature"])
            timestamp, head_log, head_kid = head["timestamp"], head["log"], head["key_id"]
        except (KeyError, TypeError, ValueError):
            raise Invalid("heads", where, "malformed head") from None
        where = f"head {k} (size {size}, {timestamp})"
        if isinstance(size, bool) or not isinstance(size, int) or size < 0 or len(root) != 32:
            raise Invalid("heads", where, "malformed size or root")
        if head_log != log_id:
            raise Invalid("heads", where, f"signed for log {head_log!r}, not {log_id!r}")
        if head_kid != kid:
            raise Invalid("signature", where, f"signed with key {head_kid!r}, not the bundle's key {kid}")
        if parse_time(timestamp) is None:
            raise Invalid("heads", where, "malformed timestamp")
        try:
            key.verify(signature, head_statement(log_id=log_id, size=size, root=root, timestamp=timestamp))
        except InvalidSignature:
            raise Invalid("signature", where, "the Ed25519 signature does not verify") from None
        if size > tree.size:
            raise Invalid("heads", where, f"signs {size} entries, the bundle has only {tree.size}")
        if tree.root(size) != root:
            start = previous["size"] if previous else 0
            raise Invalid(
                "root",
                where,
                f"the Merkle root of the first {size} entries differs from the signed root "
                f"(entries {start}..{size - 1} differ from what was signed)",
            )
        if previous is not None:
            if size < previous["size"]:
                raise Invalid("heads", where, f"smaller than the head before it (size {previous['size']})")
            old, old_root = previous["size"], bytes.fromhex(previous["root"])
            proof = tree.consistency(old, size) if 0 < old < size else []
            if not verify_consistency(old, size, old_root, root, proof):
                raise Invalid("consistency", where, f"not consistent with the head before it (size {old})")
        previous = head
    assert previous is not None
    if previous["size"] != tree.size:
        raise Invalid(
            "heads",
            "heads.json",
            f"the last signed head covers {previous['size']} entries, the bundle has {tree.size}",
        )
    return heads


def _check_process(source: Source, replay: Replay, process: Any, report: Report) -> None:
    if replay.opened_at is None:  # frozen or in preparation: nothing to replay yet
        results = source.read_json("result.json")
        if isinstance(results, dict) and results.get("results"):
            raise Invalid("result", "result.json", "results published, but the log never opened the vote")
        report.notes.append("voting has not opened yet: no ballots to replay")
        return
    projects = source.read_json("projects.json")
    rule = source.read_json("rule.json")
    results = source.read_json("result.json")
    if not isinstance(rule, dict) or rule.get("rule") != replay.rule:
        raise Invalid(
            "rule",
            "rule.json",
            f"declares {rule.get('rule') if isinstance(rule, dict) else rule!r}, "
            f"the log's process.opened declares {replay.rule!r}",
        )
    try:
        listed = {
            int(s["scope"]): (
                {int(p["id"]): int(p["cost_cents"]) for p in s["projects"]},
                int(s["budget_cents"]),
            )
            for s in projects["scopes"]
        }
    except (KeyError, TypeError, ValueError):
        raise Invalid("projects", "projects.json", "malformed project list") from None
    logged = {sid: (dict(s.config.project_costs), s.config.budget_cents) for sid, s in replay.scopes.items()}
    if listed != logged:
        raise Invalid("projects", "projects.json", "the project list or budgets differ from process.opened")
    report.ballots = replay.counts()
    report.replaced, report.paper = replay.replaced, replay.paper
    report.closed = replay.closed_at is not None
    if not isinstance(results, dict) or not isinstance(results.get("results", []), list):
        raise Invalid("result", "result.json", "malformed result file")
    published_files = results.get("results", [])
    if replay.closed_at is None:
        if replay.published or published_files:
            raise Invalid("result", "result.json", "results published while the vote is open")
        report.notes.append("the vote is still open: no result to recompute yet")
        return
    computed: dict[int, dict[str, Any]] = {}
    for scope in sorted(replay.scopes):
        try:
            computed[scope] = replay.tally(scope)
        except TallyError as exc:
            raise Invalid("tally", f"scope {scope}", f"the tally cannot be recomputed: {exc}") from None
    for index, payload in replay.published:
        diff = _same_result(payload, computed[payload["scope"]])
        if diff:
            raise Invalid("result", f"entry {index}", f"tally.published for scope {payload['scope']}: {diff}")
    for k, item in enumerate(published_files):
        scope = item.get("scope") if isinstance(item, dict) else None
        if scope not in computed:
            raise Invalid("result", "result.json", f"result {k} names an unknown ballot scope {scope!r}")
        diff = _same_result(item, computed[scope])
        if diff:
            raise Invalid("result", "result.json", f"scope {scope}: {diff}")
    published_scopes = {p["scope"] for _, p in replay.published}
    if published_scopes and published_scopes != set(computed):
        raise Invalid("result", "log", "tally.published is missing for some ballot scopes")
    if published_files and {i["scope"] for i in published_files} != published_scopes:
        raise Invalid(
            "result", "result.json", "result.json and the tally.published entries name other scopes"
        )
    if published_scopes:
        report.results = [computed[s] for s in sorted(computed)]
    else:
        report.notes.append(
            "results not published yet; recomputed: "
            + "; ".join(f"scope {c['scope']}: {c['selected']}" for c in computed.values())
        )


def verify(path: str | Path, *, expected_key_id: str | None = None) -> Report:
    """Verify a bundle; returns the Report or raises Invalid (exit 1) / Unreadable (exit 2)."""
    source = Source(path)
    try:
        meta = source.read_json("bundle.json")
        if not isinstance(meta, dict) or meta.get("format") != BUNDLE_FORMAT:
            raise Unreadable("bundle.json does not describe a Mitmachen audit bundle")
        if meta.get("version") != BUNDLE_VERSION:
            raise Unreadable(f"bundle format version {meta.get('version')!r} is not supported (expected 1)")
        log_id, process = meta.get("log"), meta.get("process")
        if not isinstance(log_id, str) or not log_id:
            raise Unreadable("bundle.json names no log")
        for name in BASE_FILES + (PROCESS_FILES if process is not None else ()):
            if not source.has(name):
                raise Unreadable(f"the bundle lacks {name}")
        key = _load_key(source)
        kid = key_id(key)
        if expected_key_id and expected_key_id.lower() != kid:
            raise Invalid("key", "public_key.pem", f"key id {kid} is not the expected {expected_key_id}")
        report = Report(log_id=log_id, process=process, key_id=kid)
        tree = Tree()
        replay = Replay() if process is not None else None
        deferred = _check_entries(source, log_id, tree, replay)
        heads = _check_heads(source.read_json("heads.json"), log_id, key, kid, tree)
        report.entries, report.heads = tree.size, len(heads)
        report.first_head = f"size {heads[0]['size']} at {heads[0]['timestamp']}"
        report.last_head = f"size {heads[-1]['size']} at {heads[-1]['timestamp']}"
        if meta.get("entries") not in (None, tree.size):
            raise Invalid(
                "entry",
                "bundle.json",
                f"announces {meta.get('entries')} entries, entries.jsonl has {tree.size}",
            )
        if deferred is not None:
            raise deferred
        if replay is not None:
            _check_process(source, replay, process, report)
        return report
    finally:
        source.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="verify.py",
        description="Verify a Mitmachen audit bundle (zip or folder): exit 0 valid, 1 invalid, 2 unreadable.",
    )
    parser.add_argument("bundle", metavar="BUNDLE", help="the audit bundle (.zip or a folder)")
    parser.add_argument("--key-id", help="require this key id (compare with the platform's published key)")
    args = parser.parse_args(argv)
    return run(args.bundle, expected_key_id=args.key_id)


def run(bundle: str | Path, *, expected_key_id: str | None = None, out: Any = None, err: Any = None) -> int:
    """Verify and print the outcome; returns the exit status."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        report = verify(bundle, expected_key_id=expected_key_id)
    except Unreadable as exc:
        print(f"UNREADABLE: {exc}", file=err)
        return 2
    except Invalid as exc:
        print(f"INVALID ({exc.check}): {exc.where}: {exc.message}", file=err)
        return 1
    print(report.summary(), file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
