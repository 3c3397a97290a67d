"""Counting the stored ballots of a process with the pure rules of voting/rules/.

:func:`build_profile` streams the ballots of one scope from the database into the rules' CSR arrays (no
Python object per vote); :func:`tally_scope` runs a rule on them. Ballot types map to the rules' vote
types: approval and knapsack → approval (the chosen projects), cumulative → points, ranked → ordinal
(Borda L − p). Money is handed to the rules in euros (cents / 100, exact fractions), so that ``mes-add1``
raises the voters' budget one euro at a time, as in the cities that use it; results are stored in cents.

:func:`run_queued` is the job behind closing a vote: it claims the queued ``TallyRun`` rows, commits
progress in short transactions of its own (the staff page polls it) and stores each result.
Used by voting/lifecycle.py, ``mitmachen voting`` and the results pages.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
from sqlalchemy import Engine, func, select, update
from sqlmodel import Session

from app.database import new_session, utcnow
from app.i18n import gettext as _
from voting.lifecycle import VOTE_TYPE, LifecycleError, Scope, get_scope, scopes
from voting.merkle import canonical_json
from voting.models import Ballot, BallotType, Process, TallyRun
from voting.rules import Ballots, Profile, TallyResult, tally

log = logging.getLogger("mitmachen.voting.tally")
Progress = Callable[[float, str], None]
STALE_TALLY = dt.timedelta(minutes=30)
LOAD_SHARE = 0.6  # share of a scope's progress bar for reading the ballots; the rule takes the rest
BATCH = 5000


def _money(cents: int) -> Fraction:
    return Fraction(cents, 100)


def _cents(amount: Fraction | None) -> int | str | None:
    """Euros back to cents: an int when whole, otherwise the exact fraction as text."""
    if amount is None:
        return None
    value = Fraction(amount) * 100
    return value.numerator if value.denominator == 1 else str(value)


def _exact(value: Fraction | int | None) -> int | str | None:
    if value is None:
        return None
    value = Fraction(value)
    return value.numerator if value.denominator == 1 else str(value)


def build_profile(
    db: Session, process: Process, scope: Scope, *, on_progress: Progress | None = None, batch: int = BATCH
) -> Profile:
    """The rules' Profile of one scope: its projects (cost in euros), budget and every stored ballot."""
    vote_type = VOTE_TYPE[BallotType(process.ballot_type)]
    ids = [p.id for p in scope.projects]
    index = {pid: k for k, pid in enumerate(ids)}
    where = (Ballot.process_id == process.id, Ballot.scope == scope.id)
    total = db.execute(select(func.count()).select_from(Ballot).where(*where)).scalar_one()
    indptr, items, points = array("q", [0]), array("i"), array("q")
    stmt = select(Ballot.selection).where(*where).order_by(Ballot.id).execution_options(yield_per=batch)
    for n, (raw,) in enumerate(db.execute(stmt), start=1):
        selection = json.loads(raw)
        if isinstance(selection, dict):
            for pid, pts in selection.items():
                items.append(index[int(pid)])
                points.append(int(pts))
        else:
            for pid in selection:
                items.append(index[int(pid)])
        indptr.append(len(items))
        if on_progress is not None and n % batch == 0:
            on_progress(LOAD_SHARE * n / max(total, 1), "ballots")
    ballots = Ballots(
        np.frombuffer(indptr, dtype=np.int64).copy(),
        np.frombuffer(items, dtype=np.int32).copy() if items else np.zeros(0, dtype=np.int32),
        (np.frombuffer(points, dtype=np.int64).copy() if points else np.zeros(0, dtype=np.int64))
        if vote_type == "cumulative"
        else None,
    )
    return Profile(
        tuple(str(pid) for pid in ids),
        tuple(_money(p.cost_cents or 0) for p in scope.projects),
        _money(scope.budget_cents),
        ballots,
        vote_type,
    )


@dataclass
class Outcome:
    """The tally of one scope."""

    process_id: int
    scope: Scope
    result: TallyResult
    ballots: int

    @property
    def selected(self) -> list[int]:
        return [int(pid) for pid in self.result.selected]

    @property
    def cost_cents(self) -> int:
        return int(self.result.cost * 100)

    def as_dict(self) -> dict[str, Any]:
        """The stored result: selection in order, cost, budget and per-project figures (money in cents)."""
        titles = {str(p.id): p.title for p in self.scope.projects}
        projects = []
        for pid, fig in self.result.projects.items():
            row: dict[str, Any] = {
                "id": int(pid),
                "title": titles.get(pid, ""),
                "cost_cents": _cents(fig.cost),
                "score": _exact(fig.score),
                "position": fig.position,
                "reason": fig.reason,
                "stage": fig.stage,
                "price_cents": _cents(fig.price),
                "available_cents": _cents(fig.available),
                "needed_cents": _cents(fig.needed),
                "rho": _exact(fig.rho),
                "load": _exact(fig.load),
                "payers": fig.payers,
                "exhausted": fig.exhausted,
            }
            projects.append({k: v for k, v in row.items() if v is not None})
        details = {}
        if "voter_budget" in self.result.details:
            details["voter_budget_cents"] = _cents(Fraction(self.result.details["voter_budget"]))  # type: ignore[arg-type]
        if "mes_runs" in self.result.details:
            details["mes_runs"] = int(self.result.details["mes_runs"])  # type: ignore[call-overload]
        return {
            "scope": self.scope.id,
            "rule": self.result.rule,
            "selected": self.selected,
            "cost_cents": self.cost_cents,
            "budget_cents": self.scope.budget_cents,
            "ballots": self.ballots,
            "projects": projects,
            "details": details,
        }

    def result_json(self) -> str:
        return canonical_json(self.as_dict()).decode("utf-8")


def tally_scope(
    db: Session,
    process: Process,
    scope_id: int,
    *,
    rule: str | None = None,
    on_progress: Progress | None = None,
) -> Outcome:
    """Count one scope's ballots with ``rule`` (default: the process's rule)."""
    scope = get_scope(db, process, scope_id)
    if scope is None:
        raise LookupError(f"process {process.id} has no ballot {scope_id}")
    profile = build_profile(db, process, scope, on_progress=on_progress)
    if on_progress is not None:
        on_progress(LOAD_SHARE, "rule")
    result = tally(rule or process.rule, profile)
    if on_progress is not None:
        on_progress(1.0, "done")
    return Outcome(process.id, scope, result, profile.voters)


# --- tally runs (the job) -------------------------------------------------------------------------------


def queue_tally(db: Session, *, process: Process) -> list[TallyRun]:
    """New tally runs (one per scope, with the process's rule) for :func:`run_queued` to pick up."""
    if process.voting_closed_at is None or process.results_published_at is not None:
        raise LifecycleError(
            "wrong_phase", _("The tally runs after voting has closed and before publication.")
        )
    fail_stale_runs(db, process)
    runs = [TallyRun(process_id=process.id, scope=s.id, rule=process.rule) for s in scopes(db, process)]
    db.add_all(runs)
    db.flush()
    return runs


def latest_runs(db: Session, process: Process) -> dict[int, TallyRun]:
    """The newest tally run of every scope with the process's rule."""
    stmt = (
        select(TallyRun)
        .where(TallyRun.process_id == process.id, TallyRun.rule == process.rule)
        .order_by(TallyRun.scope, TallyRun.id)
    )
    return {run.scope: run for run in db.execute(stmt).scalars()}


def is_running(db: Session, process: Process) -> bool:
    return any(run.status == "running" for run in latest_runs(db, process).values())


def is_done(db: Session, process: Process) -> bool:
    """Every scope has a finished run with the process's rule."""
    runs = latest_runs(db, process)
    return all(s.id in runs and runs[s.id].status == "done" for s in scopes(db, process))


def needs_tally(db: Session, process: Process, now: dt.datetime | None = None) -> bool:
    """Closed, not published, and some scope lacks a usable run (none, failed, or stuck)."""
    now = now or utcnow()
    if process.voting_closed_at is None or process.results_published_at is not None:
        return False
    runs = latest_runs(db, process)
    for s in scopes(db, process):
        run = runs.get(s.id)
        if run is None or run.status == "failed":
            return True
        if run.status == "running" and now - run.started_at > STALE_TALLY:
            return True
    return False


def fail_stale_runs(db: Session, process: Process, now: dt.datetime | None = None) -> int:
    """Mark runs stuck in "running" for longer than STALE_TALLY as failed (their worker died)."""
    now = now or utcnow()
    stmt = (
        update(TallyRun)
        .where(
            TallyRun.process_id == process.id,
            TallyRun.status == "running",
            TallyRun.started_at < now - STALE_TALLY,
        )
        .values(status="failed", error="interrupted", finished_at=now)
    )
    return int(db.execute(stmt).rowcount or 0)


def run_queued(engine: Engine, *, process_id: int, on_progress: Progress | None = None) -> list[TallyRun]:
    """Run the queued tally runs of a process; returns the finished runs (done or failed).

    Progress (0..1 over all queued scopes) goes to ``on_progress`` and, per run, to ``TallyRun.progress``
    (percent). A run another worker has already claimed is left alone."""
    with new_session(engine) as db:
        queued = list(
            db.execute(
                select(TallyRun.id)
                .where(
                    TallyRun.process_id == process_id, TallyRun.status == "running", TallyRun.progress == 0
                )
                .order_by(TallyRun.id)
            ).scalars()
        )
    finished: list[TallyRun] = []
    for k, run_id in enumerate(queued):
        if not _claim(engine, run_id):
            continue
        last = [1]

        def report(fraction: float, label: str, _k: int = k, _id: int = run_id, _last: list = last) -> None:
            percent = max(1, min(99, int(fraction * 100)))
            if percent > _last[0]:
                _last[0] = percent
                _update(engine, _id, progress=percent)
            if on_progress is not None:
                on_progress((_k + fraction) / len(queued), label)

        try:
            with new_session(engine) as db:
                run = db.get(TallyRun, run_id)
                process = db.get(Process, process_id)
                assert run is not None and process is not None
                outcome = tally_scope(db, process, run.scope, rule=run.rule, on_progress=report)
        except Exception as exc:  # recorded and shown to staff, who can run it again
            log.exception("tally run %s of process %s failed", run_id, process_id)
            _update(engine, run_id, status="failed", error=str(exc)[:2000], finished_at=utcnow())
        else:
            _update(
                engine,
                run_id,
                status="done",
                progress=100,
                result=outcome.result_json(),
                ballots=outcome.ballots,
                finished_at=utcnow(),
            )
        with new_session(engine) as db:
            run = db.get(TallyRun, run_id)
            assert run is not None
            finished.append(run)
    return finished


def _claim(engine: Engine, run_id: int) -> bool:
    with new_session(engine, write=True) as db:
        claimed = db.execute(
            update(TallyRun)
            .where(TallyRun.id == run_id, TallyRun.status == "running", TallyRun.progress == 0)
            .values(progress=1, started_at=utcnow())
        ).rowcount
        db.commit()
    return claimed == 1


def _update(engine: Engine, run_id: int, **values: Any) -> None:
    with new_session(engine, write=True) as db:
        stmt = update(TallyRun).where(TallyRun.id == run_id)
        if "status" not in values:  # progress only while running, and only forward
            stmt = stmt.where(TallyRun.status == "running", TallyRun.progress < values["progress"])
        db.execute(stmt.values(**values))
        db.commit()


def published_results(db: Session, process: Process) -> list[tuple[Scope, dict[str, Any]]]:
    """The published result of every scope (empty before publication)."""
    if process.results_published_at is None:
        return []
    runs = latest_runs(db, process)
    out = []
    for s in scopes(db, process):
        run = runs.get(s.id)
        if run is not None and run.published_at is not None:
            out.append((s, json.loads(run.result)))
    return out
