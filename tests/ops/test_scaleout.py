"""Scale-out (issue #9): two separate ``mitmachen serve`` processes (not two workers of one) on one
database, residents voting through both at once. The Merkle log must stay one tree: appends serialise on
the log's state row (PostgreSQL: SELECT … FOR UPDATE; SQLite: BEGIN IMMEDIATE), so two processes can never
append at the same index or sign heads of diverging trees."""

from __future__ import annotations

import time

from bench import load_ballots as lb
from tests.ops.conftest import Load, assert_consistent
from voting import audit
from voting.merkle import leaf_hash, merkle_root, verify_consistency

VOTERS = 300


def test_two_servers_one_database_keep_one_log(ops_db, serve):
    """Concurrent ballots through two servers: every ballot stored once; log indices contiguous; every
    signed head's root is the root of the first ``size`` stored entries (recomputed from the leaves, so two
    heads of the same size agree); a consistency proof from the database verifies between every head and
    the next and between every head and the newest; the audit bundle passes ``mitmachen verify``."""
    from app.database import make_engine, new_session
    from app.settings import Settings
    from voting import heads

    seeded = lb.seed(ops_db.url, VOTERS)
    first = serve(workers=1)
    second = serve(workers=1)
    plan = lb.Plan(
        port=first.port,
        process_id=seeded.process_id,
        connections=16,
        deadline=time.monotonic() + 60,
        receipt_share=1.0,
        retry=True,
        retry_pause=0.1,
        timeout=30.0,
    )
    outcomes = Load(plan, seeded.voters, ports=[first.port, second.port]).start().join()
    assert_consistent(ops_db, seeded, outcomes)
    by_server = {port: sum(1 for o in outcomes if o.port == port) for port in (first.port, second.port)}
    assert min(by_server.values()) >= VOTERS // 4, by_server  # both servers took ballots

    log_id = audit.process_log(seeded.process_id)
    engine = make_engine(Settings(environment="development", database_url=ops_db.url))
    try:
        with new_session(engine) as db:
            rows = audit.entries(db, log_id, limit=VOTERS * 3)
            assert [r.idx for r in rows] == list(range(len(rows)))
            entries = [bytes(r.entry) for r in rows]
            assert [bytes(r.leaf_hash) for r in rows] == [leaf_hash(e) for e in entries]
            assert len(entries) == VOTERS + 2  # process.frozen, process.opened, one ballot.cast each
            signed = heads.list_heads(db, log_id)
            assert len(signed) >= 2
            roots = {}
            for head in signed:
                root = bytes(head.root)
                assert root == merkle_root(entries[: head.size]), f"head of size {head.size} forks the log"
                assert roots.setdefault(head.size, root) == root
            newest = signed[-1]
            sizes = sorted(roots)
            pairs = list(zip(sizes, sizes[1:], strict=False)) + [(s, newest.size) for s in sizes]
            for old, new in pairs:
                if not 0 < old < new:
                    continue
                proof = audit.prove_consistency(db, log_id, old, new)
                assert verify_consistency(old, new, roots[old], roots[new], proof), (old, new)
    finally:
        engine.dispose()
