"""Audit-log benchmark on SQLite: appends through ``voting.audit.append``, proofs, memory.

    python -m bench.audit                         # 1,000,000 entries (a few minutes)
    python -m bench.audit --entries 200000        # quicker
    python -m bench.audit --db /tmp/audit.sqlite3 # keep the database

Phases, on a fresh migrated SQLite database (WAL, synchronous=NORMAL, as the app runs it):

1. realistic appends: one ballot-sized entry per transaction, each transaction opened and committed
   exactly like a request's unit of work (``new_session(engine, write=True)`` … ``commit()``), for the
   first ``--realistic`` entries; RSS measured at that size;
2. bulk load up to ``--entries``, ``--batch`` appends per transaction;
3. realistic appends again at the full size (an append costs O(log n): the rate must not drop);
4. ``--proofs`` random inclusion proofs against the full tree (each also verified) and as many random
   consistency proofs: median and p99 latency; RSS at the full size.

Targets (issue 6): at least 2,000 appends/s through the service on SQLite, inclusion proof < 5 ms, memory
independent of the size of the log.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.database import make_engine, new_session  # noqa: E402
from app.migrations import upgrade  # noqa: E402
from app.settings import Settings  # noqa: E402
from voting import audit  # noqa: E402
from voting.merkle import verify_consistency, verify_inclusion  # noqa: E402

LOG = "process:1"


def rss_mb() -> float:
    """Current resident set size (Linux /proc), in MiB."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):  # pragma: no cover - not Linux
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def payload(n: int, rng: random.Random) -> dict:
    return {
        "ballot": f"{rng.getrandbits(128):032x}",
        "scope": 0,
        "selection": sorted(rng.sample(range(1, 60), 3)),
        "version": 1,
        "paper": n % 50 == 0,
    }


def realistic(engine, count: int, rng: random.Random, start: int) -> float:
    """Appends per second, one per transaction."""
    began = time.perf_counter()
    for n in range(count):
        with new_session(engine, write=True) as db:
            audit.append(db, log_id=LOG, entry_type="ballot.cast", payload=payload(start + n, rng))
            db.commit()
    return count / (time.perf_counter() - began)


def bulk(engine, until: int, batch: int, rng: random.Random, start: int) -> tuple[float, int]:
    """Appends per second with ``batch`` appends per transaction, up to ``until`` entries."""
    began, n = time.perf_counter(), start
    report = max(until // 10, batch)
    while n < until:
        with new_session(engine, write=True) as db:
            for _ in range(min(batch, until - n)):
                audit.append(db, log_id=LOG, entry_type="ballot.cast", payload=payload(n, rng))
                n += 1
            db.commit()
        if n % report < batch:
            print(
                f"  … {n:,} entries, {(n - start) / (time.perf_counter() - began):,.0f} appends/s", flush=True
            )
    return (n - start) / (time.perf_counter() - began), n


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def proofs(engine, size: int, count: int, rng: random.Random) -> dict[str, float]:
    inclusion, consistency = [], []
    with new_session(engine) as db:
        root = audit.root(db, LOG, size)
        for _ in range(count):
            index = rng.randrange(size)
            began = time.perf_counter()
            proof = audit.prove_inclusion(db, LOG, index, size)
            inclusion.append(time.perf_counter() - began)
            entry = bytes(audit.entries(db, LOG, start=index, limit=1)[0].entry)
            assert verify_inclusion(entry, index, size, proof, root), index
        for _ in range(count):
            old = rng.randrange(1, size)
            began = time.perf_counter()
            proof = audit.prove_consistency(db, LOG, old, size)
            consistency.append(time.perf_counter() - began)
            if len(consistency) <= 20:  # verifying needs the old root (another O(log n) computation)
                assert verify_consistency(old, size, audit.root(db, LOG, old), root, proof)
    ms = 1000
    return {
        "inclusion_median_ms": statistics.median(inclusion) * ms,
        "inclusion_p99_ms": percentile(inclusion, 0.99) * ms,
        "consistency_median_ms": statistics.median(consistency) * ms,
        "consistency_p99_ms": percentile(consistency, 0.99) * ms,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--entries", type=int, default=1_000_000, help="log size to reach (default 1,000,000)"
    )
    parser.add_argument("--realistic", type=int, default=10_000, help="one-per-transaction appends per phase")
    parser.add_argument("--batch", type=int, default=1000, help="appends per transaction in the bulk load")
    parser.add_argument("--proofs", type=int, default=1000, help="random proofs of each kind")
    parser.add_argument("--db", help="SQLite file (default: a temporary one)")
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args(argv)
    if args.entries < args.realistic or args.realistic < 1:
        parser.error("--entries must be at least --realistic (and that at least 1)")
    path = Path(args.db) if args.db else Path(tempfile.mkdtemp(prefix="bench-audit-")) / "audit.sqlite3"
    if path.exists():
        parser.error(f"{path} exists; give a new file")
    url = f"sqlite:///{path}"
    upgrade(url)
    engine = make_engine(Settings(environment="test", database_url=url))
    rng = random.Random(args.seed)
    print(f"SQLite database: {path}")

    first = realistic(engine, args.realistic, rng, 0)
    rss_small = rss_mb()
    print(
        f"1. realistic, one append per transaction, 0 → {args.realistic:,}: {first:,.0f} appends/s; "
        f"RSS {rss_small:.1f} MiB"
    )
    rate, size = bulk(engine, args.entries - args.realistic, args.batch, rng, args.realistic)
    print(f"2. bulk load, {args.batch} appends per transaction, → {size:,}: {rate:,.0f} appends/s")
    again = realistic(engine, args.realistic, rng, size)
    size += args.realistic
    print(f"3. realistic again at {size:,} entries: {again:,.0f} appends/s")
    figures = proofs(engine, size, args.proofs, rng)
    rss_big = rss_mb()
    print(
        f"4. {args.proofs} random inclusion proofs at size {size:,}: median {figures['inclusion_median_ms']:.2f} ms, "
        f"p99 {figures['inclusion_p99_ms']:.2f} ms; consistency proofs: median "
        f"{figures['consistency_median_ms']:.2f} ms, p99 {figures['consistency_p99_ms']:.2f} ms"
    )
    print(
        f"   RSS at {args.realistic:,} entries {rss_small:.1f} MiB, at {size:,} entries {rss_big:.1f} MiB; "
        f"database {path.stat().st_size / 2**20:,.0f} MiB"
    )
    with new_session(engine) as db:
        assert audit.size(db, LOG) == size
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
