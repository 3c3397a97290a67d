"""The life of a budget vote as timestamps and use cases: pre-flight check, freeze, open, close, tally,
publish, destroy the voter links.

Phases are derived from what happened (``frozen_at``, ``voting_opened_at``, ``voting_closed_at``,
``results_published_at``) and the planned end (``voting_ends_at``); every step locks the process row,
checks its phase and appends its audit-log entry in the caller's transaction (never commits). Casting
takes a shared lock on the same row, so no ballot can be logged after ``process.closed``.

Ballots ("scopes", voting/scopes.py; the pre-flight check is voting/preflight.py, and both are
re-exported here): scope 0 is the city-wide ballot with ``Process.budget_cents``. With
``has_district_ballots`` every district that has a ``DistrictBudget`` has its own ballot (scope = district
id) with the projects of that district; city-wide projects have no district. Without district ballots every
project is on the city-wide ballot and its district only says where it happens (and filters the list).

The tally itself is a job (:func:`run_tally`): it commits its progress in short transactions of its own so
that the staff page can poll it, and stores each scope's result in a ``TallyRun``.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, bindparam, delete, func, select
from sqlmodel import Session

from app.database import utcnow
from app.i18n import gettext as _
from voting import audit, heads
from voting.models import Ballot, Process, TallyRun, VoterLink
from voting.preflight import ISSUE_MESSAGES, Issue, preflight  # noqa: F401 - re-exported
from voting.scopes import (  # noqa: F401 - re-exported
    VOTE_TYPE,
    Scope,
    ballot_config,
    district_names,
    eligible_districts,
    frozen_projects,
    get_scope,
    project_scope,
    projects_hash,
    scopes,
)


class Phase(enum.StrEnum):
    PREPARATION = "preparation"  # projects may change
    FROZEN = "frozen"  # project list frozen, voting not open yet
    VOTING = "voting"
    COUNTING = "counting"  # voting ended (closed, or its planned end passed), results not published
    RESULTS = "results"


def phase(process: Process, now: dt.datetime | None = None) -> Phase:
    now = now or utcnow()
    if process.results_published_at is not None:
        return Phase.RESULTS
    if process.voting_closed_at is not None:
        return Phase.COUNTING
    if process.voting_opened_at is not None:
        ended = process.voting_ends_at is not None and now >= process.voting_ends_at
        return Phase.COUNTING if ended else Phase.VOTING
    return Phase.FROZEN if process.frozen_at is not None else Phase.PREPARATION


def is_voting_open(process: Process, now: dt.datetime | None = None) -> bool:
    return phase(process, now) == Phase.VOTING


@dataclass(frozen=True)
class TimelineStep:
    key: str  # ideas, review, voting, results
    starts_at: dt.datetime | None  # planned
    ends_at: dt.datetime | None  # planned
    state: str  # done, current, upcoming
    actual_start: dt.datetime | None = None
    actual_end: dt.datetime | None = None


def timeline(process: Process, now: dt.datetime | None = None) -> list[TimelineStep]:
    """The phases with planned dates (and what actually happened) for the process page."""
    now = now or utcnow()
    current = phase(process, now)
    opened = process.voting_opened_at is not None

    def planned_state(start: dt.datetime | None, end: dt.datetime | None) -> str:
        if opened or (end is not None and now >= end):
            return "done"
        return "current" if start is not None and now >= start else "upcoming"

    steps = []
    if process.ideas_starts_at is not None:
        steps.append(
            TimelineStep(
                "ideas",
                process.ideas_starts_at,
                process.review_starts_at,
                planned_state(process.ideas_starts_at, process.review_starts_at or process.voting_starts_at),
            )
        )
    if process.review_starts_at is not None:
        steps.append(
            TimelineStep(
                "review",
                process.review_starts_at,
                process.voting_starts_at,
                planned_state(process.review_starts_at, process.voting_starts_at),
            )
        )
    voting_state = {Phase.VOTING: "current", Phase.COUNTING: "done", Phase.RESULTS: "done"}.get(
        current, "upcoming"
    )
    steps.append(
        TimelineStep(
            "voting",
            process.voting_starts_at,
            process.voting_ends_at,
            voting_state,
            process.voting_opened_at,
            process.voting_closed_at,
        )
    )
    results_state = {Phase.COUNTING: "current", Phase.RESULTS: "done"}.get(current, "upcoming")
    steps.append(
        TimelineStep("results", process.results_at, None, results_state, process.results_published_at)
    )
    return steps


def processes(db: Session) -> list[Process]:
    """Every process, the latest vote first."""
    stmt = select(Process).order_by(Process.voting_starts_at.desc().nulls_last(), Process.id.desc())
    return list(db.execute(stmt).scalars())


# --- the steps ------------------------------------------------------------------------------------------


class LifecycleError(Exception):
    """A step is not possible now; ``code`` is stable, ``issues`` lists pre-flight problems."""

    def __init__(self, code: str, message: str, issues: list[Issue] | None = None):
        super().__init__(message)
        self.code = code
        self.issues = issues or []


def lock(db: Session, process: Process, *, shared: bool = False) -> Process:
    """Re-read the process row under a lock (shared for casting, exclusive for lifecycle steps)."""
    locked = lock_id(db, int(process.id), shared=shared)
    assert locked is not None
    return locked


# Built once (every cast runs one): the process row under a share (True) or an exclusive (False) lock.
_LOCKED_PROCESS = {
    shared: select(Process)
    .where(Process.id == bindparam("process_id"))
    .with_for_update(read=shared)
    .execution_options(populate_existing=True)
    for shared in (True, False)
}
_LOCKS = "voting.process_locks"  # db.info: (transaction, {process id: shared?}) of the row locks held


def lock_id(db: Session, process_id: int, *, shared: bool = False) -> Process | None:
    """The process read under a row lock (PostgreSQL ``FOR SHARE`` / ``FOR UPDATE``; SQLite has no row
    locks: a plain read, to be made after the write lock is taken); None if there is no such process.

    On PostgreSQL a row this transaction already locked (as strongly) cannot have changed since: it is not
    read again (a cast reads its process under the share lock first, then ``cast_ballot`` asks again)."""
    tx = db.get_transaction()
    held = db.info.get(_LOCKS)
    if held is not None and held[0] is tx and tx is not None and db.get_bind().dialect.name != "sqlite":
        mode = held[1].get(process_id)
        if mode is False or (mode is True and shared):
            found = db.get(Process, process_id)  # from the identity map: no statement
            if found is not None:
                return found
    process = db.execute(_LOCKED_PROCESS[shared], {"process_id": process_id}).scalar_one_or_none()
    if process is not None:
        tx = db.get_transaction()
        if held is None or held[0] is not tx:
            held = db.info[_LOCKS] = (tx, {})
        held[1][process_id] = held[1].get(process_id, True) and shared  # False: exclusive
    return process


def _require(process: Process, now: dt.datetime, *allowed: Phase) -> None:
    if phase(process, now) not in allowed:
        raise LifecycleError(
            "wrong_phase", _("This step is not possible in the current phase of the process.")
        )


def freeze(db: Session, *, process: Process, now: dt.datetime | None = None) -> Process:
    """Freeze the project list (refused while any pre-flight issue remains); logs its hash."""
    process = lock(db, process)
    now = now or utcnow()
    _require(process, now, Phase.PREPARATION)
    issues = preflight(db, process, now)
    if issues:
        raise LifecycleError("issues", _("Please resolve the issues of the pre-flight check first."), issues)
    rows = frozen_projects(scopes(db, process))
    process.projects_hash = projects_hash(rows)
    process.frozen_at = process.updated_at = now
    db.add(process)
    audit.append(
        db,
        log_id=audit.process_log(process.id),
        entry_type="process.frozen",
        payload={"projects_hash": process.projects_hash, "projects": rows},
        at=now,
    )
    return process


def open_voting(db: Session, *, process: Process, now: dt.datetime | None = None) -> Process:
    """Open the vote (freezing the project list first if needed); refused while any issue remains or
    before the planned start. Logs every ballot's rules and projects."""
    process = lock(db, process)
    now = now or utcnow()
    _require(process, now, Phase.PREPARATION, Phase.FROZEN)
    if process.frozen_at is None:
        process = freeze(db, process=process, now=now)
    issues = preflight(db, process, now)
    if process.voting_starts_at is not None and now < process.voting_starts_at:
        issues.append(Issue("voting_not_started"))
    if issues:
        raise LifecycleError("issues", _("Please resolve the issues of the pre-flight check first."), issues)
    all_scopes = scopes(db, process)
    payload = {
        "scopes": {
            str(s.id): {
                "config": ballot_config(process, s).to_json(),
                "projects": [{"id": p.id, "title": p.title, "cost_cents": p.cost_cents} for p in s.projects],
            }
            for s in all_scopes
        },
        "rule": process.rule,
        "voting_starts_at": audit.format_time(process.voting_starts_at),  # type: ignore[arg-type]
        "voting_ends_at": audit.format_time(process.voting_ends_at),  # type: ignore[arg-type]
        "projects_hash": process.projects_hash,
    }
    process.voting_opened_at = process.updated_at = now
    db.add(process)
    audit.append(
        db, log_id=audit.process_log(process.id), entry_type="process.opened", payload=payload, at=now
    )
    return process


def ballot_counts(db: Session, process: Process) -> dict[int, int]:
    stmt = select(Ballot.scope, func.count()).where(Ballot.process_id == process.id).group_by(Ballot.scope)
    counts = {s.id: 0 for s in scopes(db, process)}
    counts.update({int(scope): int(n) for scope, n in db.execute(stmt)})
    return counts


def close_voting(db: Session, *, process: Process, now: dt.datetime | None = None) -> list[TallyRun]:
    """Close the vote (by staff, or by :func:`close_due` at the planned end): logs the number of ballots per
    scope, signs a tree head and queues the tally of every scope."""
    process = lock(db, process)
    now = now or utcnow()
    if process.voting_opened_at is None or process.voting_closed_at is not None:
        raise LifecycleError("wrong_phase", _("Voting is not open."))
    process.voting_closed_at = process.updated_at = now
    db.add(process)
    counts = ballot_counts(db, process)
    log_id = audit.process_log(process.id)
    payload = {"ballots": {str(scope): n for scope, n in counts.items()}}
    audit.append(db, log_id=log_id, entry_type="process.closed", payload=payload, at=now)
    heads.sign_head(db, log_id=log_id, reason="close")
    from voting import tally

    return tally.queue_tally(db, process=process)


def close_due(db: Session, now: dt.datetime | None = None) -> list[Process]:
    """Close every open vote whose planned end has passed (``mitmachen voting tick``)."""
    now = now or utcnow()
    stmt = select(Process).where(
        Process.voting_opened_at.is_not(None),
        Process.voting_closed_at.is_(None),
        Process.voting_ends_at <= now,
    )
    closed = []
    for process in db.execute(stmt.order_by(Process.id)).scalars().all():
        close_voting(db, process=process, now=now)
        closed.append(process)
    return closed


def open_due(db: Session, now: dt.datetime | None = None) -> list[tuple[Process, list[Issue]]]:
    """Open frozen votes whose planned start has come; returns (process, issues) for those that could not."""
    now = now or utcnow()
    stmt = select(Process).where(
        Process.frozen_at.is_not(None),
        Process.voting_opened_at.is_(None),
        Process.voting_starts_at <= now,
        Process.voting_ends_at > now,
    )
    out = []
    for process in db.execute(stmt.order_by(Process.id)).scalars().all():
        try:
            with db.begin_nested():
                open_voting(db, process=process, now=now)
            out.append((process, []))
        except LifecycleError as exc:
            out.append((process, exc.issues))
    return out


# --- tally (the job itself lives in voting/tally.py) ----------------------------------------------------


def run_tally(engine: Engine, *, process_id: int, on_progress: Callable[[float, str], None] | None = None):
    """Run the queued tally runs of a process (see :func:`voting.tally.run_queued`)."""
    from voting import tally

    return tally.run_queued(engine, process_id=process_id, on_progress=on_progress)


def publish_results(db: Session, *, process: Process, now: dt.datetime | None = None) -> Process:
    """Publish the finished tally of every scope; logs ``tally.published`` per scope."""
    import json

    process = lock(db, process)
    now = now or utcnow()
    if process.voting_closed_at is None or process.results_published_at is not None:
        raise LifecycleError("wrong_phase", _("Results can be published once, after voting has closed."))
    from voting import tally

    runs = tally.latest_runs(db, process)
    all_scopes = scopes(db, process)
    if any(s.id not in runs or runs[s.id].status != "done" for s in all_scopes):
        raise LifecycleError("tally_unfinished", _("The tally of every ballot must be finished first."))
    log_id = audit.process_log(process.id)
    for s in all_scopes:
        run = runs[s.id]
        result = json.loads(run.result)
        run.published_at = now
        db.add(run)
        audit.append(
            db,
            log_id=log_id,
            entry_type="tally.published",
            payload={
                "scope": s.id,
                "rule": run.rule,
                "selected": result["selected"],
                "cost_cents": result["cost_cents"],
                "budget_cents": result["budget_cents"],
            },
            at=now,
        )
    process.results_published_at = process.updated_at = now
    db.add(process)
    return process


def destroy_links(db: Session, *, process: Process, now: dt.datetime | None = None) -> int:
    """Delete every voter ↔ ballot link of the process for good, after the results are final; logged."""
    process = lock(db, process)
    now = now or utcnow()
    if process.results_published_at is None or process.links_destroyed_at is not None:
        raise LifecycleError(
            "wrong_phase", _("Voter links can be destroyed once, after the results are published.")
        )
    removed = db.execute(delete(VoterLink).where(VoterLink.process_id == process.id)).rowcount
    process.links_destroyed_at = process.updated_at = now
    db.add(process)
    audit.append(
        db,
        log_id=audit.process_log(process.id),
        entry_type="links.destroyed",
        payload={"links": int(removed or 0)},
        at=now,
    )
    # the results are final: the residents' registers of this process keep their data only hashed or delete
    # it, as each register's retention says (voting/verification.py)
    from voting.verification import close_registers_of_process

    close_registers_of_process(db, process.id)
    return int(removed or 0)
