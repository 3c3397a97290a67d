"""``mitmachen voting tick`` and ``mitmachen voting tally PROCESS_ID [--publish]``.

``tick`` is meant for cron (every minute): it opens frozen votes whose planned start has come, closes open
votes whose planned end has passed, re-queues tallies whose worker died, and runs every queued tally with
a progress bar on stderr. ``tally`` counts a closed vote again (e.g. after a failure) and, with
``--publish``, publishes the result. Exit status: 0 success, 1 a tally failed, 2 bad input.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from app.database import make_engine, new_session
from app.settings import Settings


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "voting",
        help="budget votes: open and close on schedule, tally",
        description="Budget votes: open and close votes on schedule and count them.",
    )
    sub = parser.add_subparsers(dest="voting_command", metavar="ACTION", required=True)
    tick = sub.add_parser(
        "tick",
        help="open and close votes whose planned time has come; run queued tallies (for cron)",
        description="Open frozen votes whose planned start has come, close votes whose planned end has "
        "passed, and run their tallies with a progress bar on stderr.",
    )
    tick.set_defaults(func=cmd_tick)
    tally = sub.add_parser(
        "tally",
        help="count a closed vote again (optionally publish the result)",
        description="Run the tally of a closed vote with its rule, one run per ballot, with a progress bar.",
    )
    tally.add_argument("process_id", type=int, metavar="PROCESS_ID")
    tally.add_argument("--publish", action="store_true", help="publish the result when every tally succeeded")
    tally.set_defaults(func=cmd_tally)
    return parser


class ProgressBar:
    """A progress bar on stderr: redrawn in place on a terminal, one line per 10 % otherwise."""

    def __init__(self, label: str, stream: TextIO | None = None, width: int = 30):
        self.label, self.stream, self.width = label, stream or sys.stderr, width
        self.tty = self.stream.isatty()
        self.last = -1

    def __call__(self, fraction: float, stage: str) -> None:
        percent = max(0, min(100, int(fraction * 100)))
        if self.tty:
            filled = self.width * percent // 100
            bar = "#" * filled + "-" * (self.width - filled)
            self.stream.write(f"\r{self.label} [{bar}] {percent:3d}% {stage:<8}")
            if percent == 100:
                self.stream.write("\n")
        elif percent // 10 > self.last // 10 or (percent == 100 and self.last != 100):
            self.stream.write(f"{self.label}: {percent}% {stage}\n")
        self.last = percent
        self.stream.flush()


def _run(engine, process_id: int, title: str) -> bool:
    """Run the queued tallies of a process with a progress bar; True if all succeeded."""
    from voting import lifecycle

    runs = lifecycle.run_tally(engine, process_id=process_id, on_progress=ProgressBar(f"{title[:40]}"))
    for run in runs:
        if run.status == "done":
            import json

            result = json.loads(run.result)
            print(
                f"process {process_id} ballot {run.scope}: rule {run.rule}, {run.ballots} ballots, "
                f"selected {result['selected']}, cost {result['cost_cents']} of {result['budget_cents']} cents"
            )
        else:
            print(f"process {process_id} ballot {run.scope}: tally failed: {run.error}", file=sys.stderr)
    return all(run.status == "done" for run in runs)


def cmd_tick(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from voting import lifecycle, tally
    from voting.models import Process, TallyRun

    engine = make_engine(Settings.from_env())
    with new_session(engine, write=True) as db:
        opened = lifecycle.open_due(db)
        closed = lifecycle.close_due(db)
        for process in db.execute(
            select(Process).where(
                Process.voting_closed_at.is_not(None), Process.results_published_at.is_(None)
            )
        ).scalars():
            if tally.fail_stale_runs(db, process):
                tally.queue_tally(db, process=process)
        db.commit()
        queued = db.execute(
            select(Process.id, Process.title)
            .join(TallyRun, TallyRun.process_id == Process.id)
            .where(TallyRun.status == "running", TallyRun.progress == 0)
            .distinct()
        ).all()
    for process, issues in opened:
        if issues:
            codes = ", ".join(i.code for i in issues)
            print(f"process {process.id}: cannot open voting ({codes})", file=sys.stderr)
        else:
            print(f"process {process.id}: voting opened")
    for process in closed:
        print(f"process {process.id}: voting closed")
    ok = True
    for process_id, title in queued:
        ok = _run(engine, process_id, title) and ok
    return 0 if ok else 1


def cmd_tally(args: argparse.Namespace) -> int:
    from voting import lifecycle, tally
    from voting.lifecycle import LifecycleError
    from voting.models import Process

    engine = make_engine(Settings.from_env())
    with new_session(engine, write=True) as db:
        process = db.get(Process, args.process_id)
        if process is None:
            print(f"error: no process {args.process_id}", file=sys.stderr)
            return 2
        try:
            tally.queue_tally(db, process=process)
        except LifecycleError as exc:
            print(f"error: process {process.id}: {exc}", file=sys.stderr)
            return 2
        db.commit()
        title = process.title
    if not _run(engine, args.process_id, title):
        return 1
    if args.publish:
        with new_session(engine, write=True) as db:
            process = db.get(Process, args.process_id)
            assert process is not None
            try:
                lifecycle.publish_results(db, process=process)
            except LifecycleError as exc:
                print(f"error: process {process.id}: {exc}", file=sys.stderr)
                return 1
            db.commit()
        print(f"process {args.process_id}: results published")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point with only the ``voting`` command (tests)."""
    parser = argparse.ArgumentParser(prog="mitmachen")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))
