"""The tamper-evident, append-only audit log stored in the database (RFC 9162 Merkle tree).

Every state change that must be provable (ballots, process phases, tallies, moderation decisions, role
changes) appends one entry *in the same database transaction* as the change: ``append`` never commits, so
the change and its entry land together or not at all.

Storage: ``log_state`` (size + right-edge subtree hashes, locked for each append so two workers can never
fork the log), ``log_entry`` (canonical JSON bytes and leaf hash), ``log_node`` (the hash of every perfect
subtree of level ≥ 1, written once when it completes). An append costs O(log n) hashes and rows; inclusion
and consistency proofs cost O(log n) indexed lookups (``voting.merkle.*_from_subtrees``); nothing ever
rehashes the log.

Entries are canonical JSON objects ``{"index", "log", "type", "at", "payload"}`` (sorted keys, UTF-8, no
insignificant whitespace; floats are refused).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from app.database import utcnow
from voting.merkle import (  # noqa: F401  (re-exported: the stable interface of ../shared/DESIGN.md)
    EMPTY_ROOT,
    CompactRange,
    canonical_json,
    consistency_proof,
    consistency_proof_from_subtrees,
    inclusion_proof,
    inclusion_proof_from_subtrees,
    leaf_hash,
    merkle_root,
    subtree_getter_from_perfect,
    verify_consistency,
    verify_inclusion,
)
from voting.models import LogEntry, LogNode, LogState

PLATFORM_LOG = "platform"


def process_log(process_id: int) -> str:
    return f"process:{process_id}"


class LogError(ValueError):
    pass


@dataclass(frozen=True)
class Appended:
    log_id: str
    index: int
    entry: bytes
    leaf_hash: bytes

    @property
    def size(self) -> int:
        """The size of the log right after this append."""
        return self.index + 1


def format_time(moment: dt.datetime) -> str:
    """ISO 8601 in UTC with microseconds and a Z: the only timestamp format inside entries."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _lock_state(db: Session, log_id: str) -> LogState:
    """The log's state row, created if missing and locked until the transaction ends."""
    dialect = db.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    db.execute(
        insert(LogState)
        .values(log_id=log_id, size=0, compact_range="[]", updated_at=utcnow())
        .on_conflict_do_nothing(index_elements=["log_id"])
    )
    # On SQLite the transaction already holds the write lock (BEGIN IMMEDIATE or the INSERT above);
    # on PostgreSQL FOR UPDATE serialises appenders on this row.
    stmt = select(LogState).where(LogState.log_id == log_id).with_for_update()
    return db.execute(stmt.execution_options(populate_existing=True)).scalar_one()


def append(
    db: Session, *, log_id: str, entry_type: str, payload: dict[str, Any], at: dt.datetime | None = None
) -> Appended:
    """Append one entry to ``log_id`` in the caller's transaction (never commits)."""
    if not entry_type or len(entry_type) > 40:
        raise LogError("entry type must be 1–40 characters")
    state = _lock_state(db, log_id)
    tree = CompactRange(state.size, [bytes.fromhex(h) for h in json.loads(state.compact_range)])
    index = state.size
    entry = canonical_json(
        {
            "index": index,
            "log": log_id,
            "type": entry_type,
            "at": format_time(at or utcnow()),
            "payload": payload,
        }
    )
    leaf = leaf_hash(entry)
    completed = tree.append(leaf)
    db.add(LogEntry(log_id=log_id, idx=index, entry_type=entry_type, entry=entry, leaf_hash=leaf))
    for level, node_index, node in completed[1:]:
        db.add(LogNode(log_id=log_id, level=level, idx=node_index, hash=node))
    db.execute(
        update(LogState)
        .where(LogState.log_id == log_id)
        .values(size=tree.size, compact_range=json.dumps([h.hex() for h in tree.hashes]), updated_at=utcnow())
    )
    db.flush()
    return Appended(log_id=log_id, index=index, entry=entry, leaf_hash=leaf)


def size(db: Session, log_id: str) -> int:
    value = db.execute(select(LogState.size).where(LogState.log_id == log_id)).scalar_one_or_none()
    return int(value or 0)


def root(db: Session, log_id: str, tree_size: int | None = None) -> bytes:
    """The Merkle root of the first ``tree_size`` entries (default: the whole log)."""
    current = size(db, log_id)
    tree_size = current if tree_size is None else tree_size
    if not 0 <= tree_size <= current:
        raise LogError(f"tree size {tree_size} outside 0..{current}")
    if tree_size == 0:
        return EMPTY_ROOT
    return subtree_getter_from_perfect(_perfect_getter(db, log_id))(0, tree_size)


def _perfect_getter(db: Session, log_id: str):
    def get_perfect(level: int, index: int) -> bytes:
        if level == 0:
            stmt = select(LogEntry.leaf_hash).where(LogEntry.log_id == log_id, LogEntry.idx == index)
        else:
            stmt = select(LogNode.hash).where(
                LogNode.log_id == log_id, LogNode.level == level, LogNode.idx == index
            )
        value = db.execute(stmt).scalar_one_or_none()
        if value is None:
            raise LogError(f"log {log_id} lacks node ({level}, {index}): the store is damaged")
        return bytes(value)

    return get_perfect


def prove_inclusion(db: Session, log_id: str, index: int, tree_size: int) -> list[bytes]:
    """Audit path of entry ``index`` in the tree of ``tree_size`` entries (O(log n) lookups)."""
    current = size(db, log_id)
    if not 0 <= index < tree_size <= current:
        raise LogError(f"need 0 <= index < size <= {current}")
    return inclusion_proof_from_subtrees(
        index, tree_size, subtree_getter_from_perfect(_perfect_getter(db, log_id))
    )


def prove_consistency(db: Session, log_id: str, old_size: int, new_size: int) -> list[bytes]:
    current = size(db, log_id)
    if not 0 <= old_size <= new_size <= current:
        raise LogError(f"need 0 <= first <= second <= {current}")
    return consistency_proof_from_subtrees(
        old_size, new_size, subtree_getter_from_perfect(_perfect_getter(db, log_id))
    )


def entries(db: Session, log_id: str, *, start: int = 0, limit: int = 100) -> list[LogEntry]:
    stmt = (
        select(LogEntry)
        .where(LogEntry.log_id == log_id, LogEntry.idx >= start)
        .order_by(LogEntry.idx)
        .limit(limit)
    )
    return list(db.execute(stmt).scalars())


def iter_entries(db: Session, log_id: str, *, batch: int = 1000) -> Iterator[LogEntry]:
    """Every entry in order, fetched in batches (memory independent of the log's size)."""
    start = 0
    while True:
        rows = entries(db, log_id, start=start, limit=batch)
        if not rows:
            return
        yield from rows
        start = rows[-1].idx + 1


def decode(entry: bytes) -> dict[str, Any]:
    return json.loads(entry.decode("utf-8"))
