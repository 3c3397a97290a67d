"""Export benchmark: streaming 100,000 ballots and 200,000 comments must stay below 200 MB peak RSS and
10 s each.

    python -m bench.exports                       # SQLite in a temporary directory
    python -m bench.exports --database-url postgresql+psycopg://...   # an EMPTY scratch database

Seeds one approval process with ``--ballots`` ballots (5 of 80 projects each) and ``--comments`` comments on
50 proposals, then runs every export in a fresh child process (so its peak RSS is its own) writing to
/dev/null: the .pb ballots file, the results CSV/XLSX, and the comments CSV/XLSX. Prints seconds and peak
RSS (MB) per export, and exits 1 if any exceeds the targets.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGET_MB, TARGET_S = 200, 10.0
JOBS = ("pb", "results-csv", "results-xlsx", "comments-csv", "comments-xlsx", "proposals-csv")


def seed(url: str, n_ballots: int, n_comments: int) -> int:
    from sqlalchemy import select

    from app.database import make_engine, new_session, utcnow
    from app.demo import ensure_pages
    from app.main import demo_loaders
    from app.migrations import upgrade
    from app.models import User
    from app.settings import Settings
    from proposals.models import Comment, Proposal, Theme
    from voting.models import Ballot, Process, Project

    upgrade(url)
    engine = make_engine(Settings(environment="test", database_url=url))
    rng = random.Random(7)
    now = utcnow()
    with new_session(engine, write=True) as db:
        ensure_pages(db)
        for loader in demo_loaders():
            loader(db, None)
        db.commit()
        theme_id = db.execute(select(Theme.id)).scalars().first()
        user = User(email="bench@example.org", display_name="Bench", role="resident", password_hash="x")
        db.add(user)
        process = Process(
            slug=f"bench-{secrets.token_hex(3)}",
            title="Benchmark",
            budget_cents=10**9,
            frozen_at=now,
            voting_opened_at=now,
            voting_closed_at=now,
        )
        db.add(process)
        db.flush()
        projects = [
            Project(
                process_id=process.id, title=f"Projekt {k}", cost_cents=rng.randint(10**5, 10**8), position=k
            )
            for k in range(80)
        ]
        db.add_all(projects)
        db.flush()
        ids = [p.id for p in projects]
        rows = []
        for _ in range(n_ballots):
            rows.append(
                {
                    "process_id": process.id,
                    "scope": 0,
                    "ballot_uid": secrets.token_hex(16),
                    "selection": json.dumps(sorted(rng.sample(ids, 5))),
                    "version": 1,
                    "is_paper": False,
                    "cast_at": now,
                    "updated_at": now,
                }
            )
            if len(rows) == 10_000:
                db.execute(Ballot.__table__.insert(), rows)
                rows = []
        if rows:
            db.execute(Ballot.__table__.insert(), rows)
        proposals = [
            Proposal(
                author_id=user.id,
                theme_id=theme_id,
                title=f"Vorschlag {k}",
                summary="s",
                body_md="b",
                body_html="<p>b</p>",
                status="published",
                published_at=now,
            )
            for k in range(50)
        ]
        db.add_all(proposals)
        db.flush()
        pids = [p.id for p in proposals]
        rows = []
        body = "Ein Kommentar mit etwas Text, der typisch lang ist. " * 4
        for k in range(n_comments):
            rows.append(
                {
                    "proposal_id": pids[k % 50],
                    "author_id": user.id,
                    "depth": 0,
                    "body_md": body,
                    "body_html": f"<p>{body}</p>",
                    "score": 0,
                    "upvotes": 0,
                    "downvotes": 0,
                    "created_at": now,
                }
            )
            if len(rows) == 10_000:
                db.execute(Comment.__table__.insert(), rows)
                rows = []
        if rows:
            db.execute(Comment.__table__.insert(), rows)
        db.commit()
        return process.id


def child(url: str, job: str, process_id: int) -> None:
    """Run one export into /dev/null; print seconds, peak RSS in MB and bytes written as JSON."""
    from app.database import make_engine, new_session
    from app.settings import Settings
    from voting import exports
    from voting.models import Process

    engine = make_engine(Settings(environment="test", database_url=url))
    start = time.perf_counter()
    written = 0
    with open("/dev/null", "wb") as out:
        if job == "pb":
            chunks = (s.encode() for s in exports.pb_stream(engine, process_id=process_id))
        elif job.startswith("results"):
            with new_session(engine) as db:
                rows = exports.result_rows(db, db.get(Process, process_id), staff=True)
            chunks = (
                exports.csv_stream(exports.RESULT_HEADER, rows)
                if job.endswith("csv")
                else exports.xlsx_stream([("r", exports.RESULT_HEADER, rows)])
            )
        else:
            kind = job.split("-")[0]
            header = exports.COMMENT_HEADER if kind == "comments" else exports.PROPOSAL_HEADER
            rows = (exports.comment_rows if kind == "comments" else exports.proposal_rows)(
                engine, exports.Filters()
            )
            chunks = (
                exports.csv_stream(header, rows)
                if job.endswith("csv")
                else exports.xlsx_stream([(kind, header, rows)])
            )
        for chunk in chunks:
            written += len(chunk)
            out.write(chunk)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"job": job, "seconds": seconds, "peak_mb": peak_mb, "bytes": written}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="")
    parser.add_argument("--ballots", type=int, default=100_000)
    parser.add_argument("--comments", type=int, default=200_000)
    parser.add_argument("--child", nargs=3, metavar=("URL", "JOB", "PROCESS"), help=argparse.SUPPRESS)
    parser.add_argument("--seed-only", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return 0
    if args.seed_only:
        print(seed(args.seed_only, args.ballots, args.comments))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.sqlite3"
        t = time.perf_counter()
        # seeding runs in a child too: Linux keeps the peak RSS across fork/exec, so the parent stays small
        seeded = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.exports",
                "--seed-only",
                url,
                "--ballots",
                str(args.ballots),
                "--comments",
                str(args.comments),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        process_id = int(seeded.stdout.strip().splitlines()[-1])
        print(
            f"seeded {args.ballots:,} ballots and {args.comments:,} comments in {time.perf_counter() - t:.1f} s"
        )
        ok = True
        print(f"{'export':<16}{'seconds':>9}{'peak RSS MB':>13}{'MB written':>12}")
        for job in JOBS:
            out = subprocess.run(
                [sys.executable, "-m", "bench.exports", "--child", url, job, str(process_id)],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            flag = "" if r["seconds"] < TARGET_S and r["peak_mb"] < TARGET_MB else "  OVER TARGET"
            ok = ok and not flag
            print(f"{job:<16}{r['seconds']:>9.2f}{r['peak_mb']:>13.1f}{r['bytes'] / 1e6:>12.1f}{flag}")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
