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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from app.database import utcnow
from voting.merkle import (  # noqa: F401  (re-exported: the stable interface of ../shared/DESIGN.md)
    EMPTY_ROOT,
    CompactRange,
    GetSubtree,
    canonical_json,
    consistency_proof,
    consistency_proof_from_subtrees,
    inclusion_proof,
    inclusion_proof_from_subtrees,
    leaf_hash,
    merkle_root,
    perfect_subtrees,
    subtree_getter_from_perfect,
    verify_consistency,
    verify_inclusion,
)
from voting.models import LogEntry, LogState

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
    root: bytes = b""  # the root of the log right after this append (from the right edge, no query)

    @property
    def size(self) -> int:
        """The size of the log right after this append."""
        return self.index + 1


def format_time(moment: dt.datetime) -> str:
    """ISO 8601 in UTC with microseconds and a Z: the only timestamp format inside entries."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class _Statements:
    """The statements of an append as driver SQL for one dialect, written once.

    An append is the hot path of a vote (one per ballot): plain DB-API calls on the session's own
    connection, inside its transaction, skip SQLAlchemy's statement and result machinery, which costs more
    than the database work. Tables and columns are those of voting/models.py (``log_state``, ``log_entry``,
    ``log_node``)."""

    def __init__(self, dialect: str) -> None:
        p = self.placeholder = "?" if dialect == "sqlite" else "%s"
        lock = "" if dialect == "sqlite" else " FOR UPDATE"
        self.select = f"SELECT size, compact_range FROM log_state WHERE log_id = {p}{lock}"  # noqa: S608 placeholders only
        self.create = (
            f"INSERT INTO log_state (log_id, size, compact_range, updated_at) VALUES ({p}, 0, '[]', {p}) "  # noqa: S608 placeholders only
            "ON CONFLICT (log_id) DO NOTHING"
        )
        self.insert_entry = self.insert("log_entry", _ENTRY_COLUMNS, 1)
        self.update = (
            f"UPDATE log_state SET size = {p}, compact_range = {p}, updated_at = {p} WHERE log_id = {p}"  # noqa: S608
        )
        self.naive_utc = dialect == "sqlite"  # what app.database.UTCDateTime stores on SQLite
        self.combined = dialect == "postgresql"  # one statement for the writes of an append (``_append``)

    def time(self, moment: dt.datetime) -> dt.datetime | str:
        if self.naive_utc:
            return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return moment

    def insert(self, table: str, columns: Sequence[str], rows: int) -> str:
        """``INSERT INTO table (columns) VALUES (…), …`` for ``rows`` rows."""
        row = f"({', '.join([self.placeholder] * len(columns))})"
        return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([row] * rows)}"  # noqa: S608 names from code

    def combine(self, inserts: Sequence[str], last: str) -> str:
        """The inserts and ``last`` as one PostgreSQL statement (data-modifying WITH queries all run, once,
        whether or not anything reads them)."""
        parts = [f"w{i} AS ({sql})" for i, sql in enumerate(inserts)]
        return f"WITH {', '.join(parts)} {last}" if parts else last


@dataclass(frozen=True)
class Write:
    """A row to insert together with an append, in the same transaction (``append(…, writes=…)``): the
    ballot an entry logs, the head that covers it. ``values`` maps column names to Python values;
    datetimes are stored as app.database.UTCDateTime stores them."""

    table: str
    values: dict[str, Any]


_statements: dict[str, _Statements] = {}


def _cursor(db: Session) -> tuple[Any, _Statements]:
    """A DB-API cursor of the session's connection (its transaction begun) and the dialect's statements."""
    conn = db.connection()
    name = conn.dialect.name
    if name not in _statements:
        if name not in ("sqlite", "postgresql"):
            raise LogError(f"the audit log supports SQLite and PostgreSQL, not {name}")
        _statements[name] = _Statements(name)
    return conn.connection.dbapi_connection.cursor(), _statements[name]


def _locked_row(cur: Any, sql: _Statements, log_id: str) -> tuple[int, str]:
    """(size, compact range) of the log, its row created if missing and locked until the transaction ends.

    On SQLite the write transaction already holds the database lock (BEGIN IMMEDIATE, or the first write);
    on PostgreSQL ``FOR UPDATE`` serialises appenders on this row."""
    cur.execute(sql.select, (log_id,))
    row = cur.fetchone()
    if row is None:
        cur.execute(sql.create, (log_id, sql.time(utcnow())))
        cur.execute(sql.select, (log_id,))
        row = cur.fetchone()
    return int(row[0]), row[1]


def lock_state(db: Session, log_id: str) -> int:
    """Lock the log for the rest of the transaction (appends and head signatures serialise on it); returns
    its size."""
    cur, sql = _cursor(db)
    try:
        return _locked_row(cur, sql, log_id)[0]
    finally:
        cur.close()


def append(
    db: Session,
    *,
    log_id: str,
    entry_type: str,
    payload: dict[str, Any],
    at: dt.datetime | None = None,
    writes: Callable[[Appended], Sequence[Write]] | None = None,
) -> Appended:
    """Append one entry to ``log_id`` in the caller's transaction (never commits).

    Reads and locks the log's state, then inserts the entry and the perfect subtrees it completes (on
    average one) and updates the state. ``writes``, given the append, names more rows to insert with it
    (the ballot, a signed head). On PostgreSQL all the writes are one statement, so the log's lock is held
    for two round trips (this one and the commit) instead of one per row; on SQLite they run one by one."""
    if not entry_type or len(entry_type) > 40:
        raise LogError("entry type must be 1–40 characters")
    cur, sql = _cursor(db)
    try:
        return _append(cur, sql, log_id, entry_type, payload, at, writes)
    finally:
        cur.close()


_ENTRY_COLUMNS = ("log_id", "idx", "entry_type", "entry", "leaf_hash", "created_at")
_NODE_COLUMNS = ("log_id", "level", "idx", "hash")


def _append(
    cur: Any,
    sql: _Statements,
    log_id: str,
    entry_type: str,
    payload: dict[str, Any],
    at: dt.datetime | None,
    writes: Callable[[Appended], Sequence[Write]] | None = None,
) -> Appended:
    index, edge = _locked_row(cur, sql, log_id)
    tree = CompactRange(index, [bytes.fromhex(h) for h in json.loads(edge)])
    now = utcnow()
    entry = canonical_json(
        {
            "index": index,
            "log": log_id,
            "type": entry_type,
            "at": format_time(at or now),
            "payload": payload,
        }
    )
    leaf = leaf_hash(entry)
    completed = tree.append(leaf)
    appended = Appended(log_id=log_id, index=index, entry=entry, leaf_hash=leaf, root=tree.root())
    stamp = sql.time(now)
    inserts = [(sql.insert_entry, (log_id, index, entry_type, entry, leaf, stamp))]
    nodes = [(log_id, level, i, node) for level, i, node in completed[1:]]
    if nodes:
        inserts.append(
            (sql.insert("log_node", _NODE_COLUMNS, len(nodes)), tuple(v for n in nodes for v in n))
        )
    for write in writes(appended) if writes is not None else ():
        values = [sql.time(v) if isinstance(v, dt.datetime) else v for v in write.values.values()]
        inserts.append((sql.insert(write.table, tuple(write.values), 1), tuple(values)))
    state = (tree.size, json.dumps([h.hex() for h in tree.hashes]), stamp, log_id)
    if sql.combined:
        statement = sql.combine([text for text, _ in inserts], sql.update)
        cur.execute(statement, tuple(v for _, params in inserts for v in params) + state)
    else:
        for text, params in inserts:
            cur.execute(text, params)
        cur.execute(sql.update, state)
    return appended


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
    return _prefetched(db, log_id, lambda get: get(0, tree_size))(0, tree_size)


def _fetch_perfect(db: Session, log_id: str, wanted: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """The stored hashes of these perfect subtrees, in one query (driver SQL, like ``append``: the
    statement's shape changes with every proof, so SQLAlchemy would compile it each time)."""
    cur, sql = _cursor(db)
    p = sql.placeholder
    parts: list[str] = []
    params: list[Any] = []
    leaves = sorted(i for level, i in wanted if level == 0)
    if leaves:
        parts.append(
            f"SELECT 0, idx, leaf_hash FROM log_entry WHERE log_id = {p} AND idx IN ({', '.join([p] * len(leaves))})"  # noqa: S608
        )
        params += [log_id, *leaves]
    by_level: dict[int, list[int]] = {}
    for level, i in wanted:
        if level:
            by_level.setdefault(level, []).append(i)
    for level, ids in sorted(by_level.items()):
        # one branch per level, so that every branch is an index lookup (SQLite plans an OR as a scan)
        parts.append(
            f"SELECT level, idx, hash FROM log_node WHERE log_id = {p} AND level = {p} "  # noqa: S608 placeholders only
            f"AND idx IN ({', '.join([p] * len(ids))})"
        )
        params += [log_id, level, *sorted(ids)]
    found: dict[tuple[int, int], bytes] = {}
    try:
        if parts:
            cur.execute(" UNION ALL ".join(parts), params)
            found.update(((int(level), int(i)), bytes(h)) for level, i, h in cur.fetchall())
    finally:
        cur.close()
    missing = wanted - found.keys()
    if missing:
        level, i = min(missing)
        raise LogError(f"log {log_id} lacks node ({level}, {i}): the store is damaged")
    return found


def _prefetched(db: Session, log_id: str, walk: Callable[[GetSubtree], object]) -> GetSubtree:
    """A ``get_subtree`` for the proof computation ``walk``, its node hashes fetched in one round.

    The tree nodes a proof asks for depend only on the sizes and the index, never on the hashes, so a
    first dry run of ``walk`` records them; their perfect subtrees are then read together (instead of one
    query per node, ~2 log2(n) of them)."""
    asked: list[tuple[int, int]] = []

    def record(start: int, end: int) -> bytes:
        asked.append((start, end))
        return EMPTY_ROOT

    walk(record)
    wanted = {piece for start, end in asked for piece in perfect_subtrees(start, end)}
    hashes = _fetch_perfect(db, log_id, wanted)
    return subtree_getter_from_perfect(lambda level, i: hashes[(level, i)])


def prove_inclusion(db: Session, log_id: str, index: int, tree_size: int) -> list[bytes]:
    """Audit path of entry ``index`` in the tree of ``tree_size`` entries (O(log n) nodes, two queries)."""
    current = size(db, log_id)
    if not 0 <= index < tree_size <= current:
        raise LogError(f"need 0 <= index < size <= {current}")

    def walk(get: GetSubtree) -> list[bytes]:
        return inclusion_proof_from_subtrees(index, tree_size, get)

    return walk(_prefetched(db, log_id, walk))


def prove_consistency(db: Session, log_id: str, old_size: int, new_size: int) -> list[bytes]:
    """Consistency proof between the first ``old_size`` and ``new_size`` entries (two queries)."""
    current = size(db, log_id)
    if not 0 <= old_size <= new_size <= current:
        raise LogError(f"need 0 <= first <= second <= {current}")

    def walk(get: GetSubtree) -> list[bytes]:
        return consistency_proof_from_subtrees(old_size, new_size, get)

    return walk(_prefetched(db, log_id, walk))


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
