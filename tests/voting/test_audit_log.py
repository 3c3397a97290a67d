"""The database-backed audit log: appends in the caller's transaction, proofs from stored subtrees,
concurrent appenders never fork the log (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from app.database import new_session
from voting import audit
from voting.merkle import (
    consistency_proof,
    inclusion_proof,
    merkle_root,
    verify_consistency,
    verify_inclusion,
)
from voting.models import LogEntry


def _append_many(db, log_id: str, n: int) -> list[bytes]:
    with new_session(db.engine, write=True) as s:
        out = [
            audit.append(s, log_id=log_id, entry_type="test.entry", payload={"n": i}).entry for i in range(n)
        ]
        s.commit()
    return out


def test_append_matches_reference_tree(db):
    """Roots and proofs served from the store equal the reference computation over all entries."""
    raw = _append_many(db, "t", 37)
    with new_session(db.engine) as s:
        assert audit.size(s, "t") == 37
        for size in (1, 2, 5, 16, 17, 37):
            assert audit.root(s, "t", size) == merkle_root(raw[:size])
        for index in (0, 1, 15, 16, 36):
            proof = audit.prove_inclusion(s, "t", index, 37)
            assert proof == inclusion_proof(raw, index)
            assert verify_inclusion(raw[index], index, 37, proof, merkle_root(raw))
        for old in (1, 7, 16, 36, 37):
            proof = audit.prove_consistency(s, "t", old, 37)
            assert proof == consistency_proof(raw, old)
            assert verify_consistency(old, 37, merkle_root(raw[:old]), merkle_root(raw), proof)
        with pytest.raises(audit.LogError):
            audit.prove_inclusion(s, "t", 37, 37)
        with pytest.raises(audit.LogError):
            audit.root(s, "t", 38)
        assert audit.root(s, "empty") == merkle_root([])


def test_entries_are_canonical_and_self_describing(db):
    """Each entry is canonical JSON naming its index, log, type and time."""
    raw = _append_many(db, "c", 2)
    first = audit.decode(raw[0])
    assert set(first) == {"index", "log", "type", "at", "payload"}
    assert first["index"] == 0 and first["log"] == "c" and first["at"].endswith("Z")
    assert raw[1] == audit.canonical_json(audit.decode(raw[1]))
    with new_session(db.engine, write=True) as s, pytest.raises(ValueError):
        audit.append(s, log_id="c", entry_type="bad", payload={"x": 1.5})


def test_rollback_leaves_no_entry(db):
    """A change and its entry land together or not at all: a rolled-back append leaves nothing."""
    with new_session(db.engine, write=True) as s:
        audit.append(s, log_id="r", entry_type="test.entry", payload={})
        s.rollback()
    with new_session(db.engine) as s:
        assert audit.size(s, "r") == 0 and audit.entries(s, "r") == []


def test_concurrent_appenders_keep_one_tree(db):
    """Eight threads appending at once (each its own session/transaction) give one consistent log."""
    errors: list[Exception] = []

    def worker(k: int) -> None:
        try:
            for i in range(10):
                with new_session(db.engine, write=True) as s:
                    audit.append(s, log_id="p", entry_type="test.entry", payload={"worker": k, "i": i})
                    s.commit()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with new_session(db.engine) as s:
        rows = list(audit.iter_entries(s, "p", batch=7))
        assert [r.idx for r in rows] == list(range(80))
        raw = [bytes(r.entry) for r in rows]
        assert audit.root(s, "p") == merkle_root(raw)
        assert all(audit.decode(e)["index"] == i for i, e in enumerate(raw))
        count = s.execute(
            select(func.count()).select_from(LogEntry).where(LogEntry.log_id == "p")
        ).scalar_one()
        assert count == 80


def test_rows_written_with_an_append_land_with_it_or_not_at_all(db):
    """``append(writes=…)``: the rows named from the append (a head of the log right after it) are stored
    with the entry, in one statement on PostgreSQL; when one of them is refused, the transaction writes
    nothing at all (entry, subtrees, state, rows)."""
    from voting import heads
    from voting.models import LogNode, SignedTreeHead

    _append_many(db, "w", 3)
    with new_session(db.engine, write=True) as s:
        appended = audit.append(
            s,
            log_id="w",
            entry_type="test.entry",
            payload={"n": 3},
            writes=lambda a: [audit.Write("signed_tree_head", heads.head_values(a, reason="receipt"))],
        )
        s.commit()
    with new_session(db.engine) as s:
        assert audit.size(s, "w") == 4 and appended.index == 3
        assert audit.root(s, "w") == appended.root
        head = heads.latest_head(s, "w")
        assert head is not None and head.size == 4 and bytes(head.root) == appended.root
        assert audit.prove_inclusion(s, "w", 3, 4)  # the completed subtrees were stored
        nodes = s.execute(select(func.count()).select_from(LogNode).where(LogNode.log_id == "w")).scalar()

    def broken(a):
        return [audit.Write("signed_tree_head", {**heads.head_values(a, reason="receipt"), "root": None})]

    with new_session(db.engine, write=True) as s, pytest.raises(Exception):  # noqa: B017 - the driver's NOT NULL error
        audit.append(s, log_id="w", entry_type="test.entry", payload={"n": 4}, writes=broken)
        s.commit()
    with new_session(db.engine) as s:
        assert audit.size(s, "w") == 4
        assert (
            s.execute(select(func.count()).select_from(LogEntry).where(LogEntry.log_id == "w")).scalar() == 4
        )
        again = s.execute(select(func.count()).select_from(LogNode).where(LogNode.log_id == "w")).scalar()
        assert again == nodes
        count = select(func.count()).select_from(SignedTreeHead).where(SignedTreeHead.log_id == "w")
        assert s.execute(count).scalar() == 1
