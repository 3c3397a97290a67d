"""The life of a budget vote as timestamps and use cases: pre-flight check, freeze, open, close, tally,
publish, destroy the voter links.

Phases are derived from what happened (``frozen_at``, ``voting_opened_at``, ``voting_closed_at``,
``results_published_at``) and the planned end (``voting_ends_at``); every step locks the process row,
checks its phase and appends its audit-log entry in the caller's transaction (never commits). Casting
takes a shared lock on the same row, so no ballot can be logged after ``process.closed``.

Ballots ("scopes"): scope 0 is the city-wide ballot with ``Process.budget_cents``. With
``has_district_ballots`` every district that has a ``DistrictBudget`` has its own ballot (scope = district
id) with the projects of that district; city-wide projects have no district. Without district ballots every
project is on the city-wide ballot and its district only says where it happens (and filters the list).

The tally itself is a job (:func:`run_tally`): it commits its progress in short transactions of its own so
that the staff page can poll it, and stores each scope's result in a ``TallyRun``.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Engine, delete, func, select
from sqlmodel import Session

from app.database import utcnow
from app.i18n import format_cents, lazy
from app.i18n import gettext as _
from voting import audit, heads
from voting.merkle import canonical_json
from voting.models import Ballot, BallotType, DistrictBudget, Process, Project, TallyRun, VoterLink
from voting.selection import BALLOT_TYPES, BallotConfig

# How the tally rules see each ballot type (voting/rules vote types).
VOTE_TYPE = {
    BallotType.APPROVAL: "approval",
    BallotType.KNAPSACK: "approval",
    BallotType.CUMULATIVE: "cumulative",
    BallotType.RANKED: "ordinal",
}


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


# --- the ballots of a process -------------------------------------------------------------------------


@dataclass
class Scope:
    """One ballot of a process: the city-wide one (id 0) or a district's."""

    id: int
    budget_cents: int
    district_name: str = ""
    projects: list[Project] = field(default_factory=list)

    @property
    def is_city_wide(self) -> bool:
        return self.id == 0

    def label(self) -> str:
        return (
            _("City-wide ballot")
            if self.id == 0
            else _("Ballot for %(district)s", district=self.district_name)
        )


def district_names(db: Session) -> dict[int, str]:
    from proposals import services as proposal_services

    return {d.id: d.name for d in proposal_services.districts(db, include_inactive=True) if d.id is not None}


def eligible_districts(process: Process) -> set[int]:
    """The districts whose residents may vote (empty: everybody)."""
    out: set[int] = set()
    for part in process.eligible_district_ids.split(","):
        if part.strip().isdigit():
            out.add(int(part.strip()))
    return out


def project_scope(process: Process, project: Project, budget_districts: set[int]) -> int | None:
    """The ballot a project is on, or None if it is on none (a pre-flight issue)."""
    if not process.has_district_ballots or project.district_id is None:
        return 0
    return project.district_id if project.district_id in budget_districts else None


def _projects(db: Session, process: Process) -> list[Project]:
    stmt = select(Project).where(Project.process_id == process.id).order_by(Project.position, Project.id)
    return list(db.execute(stmt).scalars())


def _budgets(db: Session, process: Process) -> list[DistrictBudget]:
    return list(db.execute(select(DistrictBudget).where(DistrictBudget.process_id == process.id)).scalars())


def scopes(db: Session, process: Process) -> list[Scope]:
    """Every ballot of the process with its projects: city-wide first, then districts by name.

    Once voting is open the project list and the budgets are frozen (voting/admin_services.py refuses to
    change them), so the ballots are read once per worker and handed out as copies afterwards: every cast
    and every receipt needs them. The key holds the opening time and the frozen list's hash, so a process
    reset in tests or a database restore never meets an old entry; the cached projects are detached copies
    of their columns (Project has no relationships)."""
    if process.voting_opened_at is None or process.id is None:
        return _read_scopes(db, process)
    key = (str(db.get_bind().url), process.id, process.voting_opened_at, process.projects_hash)
    with _FROZEN_LOCK:
        cached = _FROZEN_SCOPES.get(key)
        if cached is not None:
            _FROZEN_SCOPES.move_to_end(key)
    if cached is None:
        cached = [replace(s, projects=[_detached(p) for p in s.projects]) for s in _read_scopes(db, process)]
        with _FROZEN_LOCK:
            _FROZEN_SCOPES[key] = cached
            while len(_FROZEN_SCOPES) > _FROZEN_MAX:
                _FROZEN_SCOPES.popitem(last=False)
    return [replace(s, projects=list(s.projects)) for s in cached]


_FROZEN_SCOPES: OrderedDict[tuple, list[Scope]] = OrderedDict()
_FROZEN_LOCK = threading.Lock()
_FROZEN_MAX = 64
_PROJECT_COLUMNS = tuple(c.key for c in Project.__table__.columns)


def _detached(project: Project) -> Project:
    return Project(**{name: getattr(project, name) for name in _PROJECT_COLUMNS})


def _read_scopes(db: Session, process: Process) -> list[Scope]:
    budgets = _budgets(db, process) if process.has_district_ballots else []
    # District names only title district ballots: no query for a city-wide-only process (every cast).
    names = district_names(db) if budgets else {}
    out = {0: Scope(0, process.budget_cents)}
    for b in sorted(budgets, key=lambda b: names.get(b.district_id, "")):
        out[b.district_id] = Scope(b.district_id, b.budget_cents, names.get(b.district_id, "?"))
    for project in _projects(db, process):
        sid = project_scope(process, project, set(out) - {0})
        if sid is not None:
            out[sid].projects.append(project)
    return list(out.values())


def get_scope(db: Session, process: Process, scope_id: int) -> Scope | None:
    return next((s for s in scopes(db, process) if s.id == scope_id), None)


def ballot_config(process: Process, scope: Scope) -> BallotConfig:
    return BallotConfig(
        ballot_type=process.ballot_type,
        budget_cents=scope.budget_cents,
        project_costs={p.id: p.cost_cents or 0 for p in scope.projects if p.id is not None},
        min_choices=process.min_choices,
        max_choices=process.max_choices,
        points_total=process.points_total,
        points_per_project=process.points_per_project,
    )


def frozen_projects(all_scopes: list[Scope]) -> list[dict[str, Any]]:
    """The project list as frozen and logged: id, title, cost and ballot of every project, by id."""
    rows = [
        {"id": p.id, "title": p.title, "cost_cents": p.cost_cents, "scope": s.id}
        for s in all_scopes
        for p in s.projects
    ]
    return sorted(rows, key=lambda r: r["id"])


def projects_hash(rows: list[dict[str, Any]]) -> str:
    return hashlib.sha256(canonical_json(rows)).hexdigest()


# --- pre-flight check ("issues before freeze") ------------------------------------------------------------


@dataclass(frozen=True)
class Issue:
    """Something that must be fixed before voting opens; ``code`` is stable, ``message()`` translated."""

    code: str
    params: dict[str, Any] = field(default_factory=dict)

    def message(self) -> str:
        p = dict(self.params)
        for key in ("cost", "budget"):
            if key in p:
                p[key] = format_cents(p[key])
        text = ISSUE_MESSAGES.get(self.code, self.code)
        return _(text, **p) if p else _(text)


ISSUE_MESSAGES = {
    "no_projects": lazy("The process has no projects yet."),
    "project_without_cost": lazy("The project “%(project)s” has no cost."),
    "project_over_budget": lazy(
        "The project “%(project)s” costs %(cost)s, more than the budget of its ballot (%(budget)s)."
    ),
    "project_without_ballot": lazy(
        "The project “%(project)s” belongs to a district without its own sub-budget."
    ),
    "empty_ballot": lazy("%(ballot)s has no projects."),
    "no_district_budgets": lazy("District ballots are switched on, but no district has a sub-budget."),
    "district_budgets_unused": lazy("District sub-budgets are set, but district ballots are switched off."),
    "voting_dates_missing": lazy("The planned start and end of voting are required."),
    "voting_ends_before_start": lazy("Voting must end after it starts."),
    "voting_end_passed": lazy("The planned end of voting has already passed."),
    "dates_out_of_order": lazy("The phases are not in order: %(first)s comes after %(second)s."),
    "unknown_ballot_type": lazy("The ballot type is unknown."),
    "min_choices_unreachable": lazy("%(ballot)s has fewer projects than the minimum number of choices."),
    "min_choices_over_budget": lazy(
        "In %(ballot)s even the cheapest allowed choice costs more than the budget."
    ),
    "max_choices_zero": lazy("The maximum number of choices must be at least 1."),
    "points_missing": lazy("Cumulative ballots need a number of points and a maximum per project."),
    "min_choices_over_points": lazy("The minimum number of projects is larger than the number of points."),
    "rule_not_applicable": lazy("The tally rule cannot count this ballot type."),
    "eligible_district_unknown": lazy("The eligibility names a district that does not exist."),
    "projects_changed": lazy("Projects were changed after the list was frozen."),
    "voting_not_started": lazy("The planned start of voting has not been reached yet."),
}
DATE_LABELS = {
    "ideas_starts_at": lazy("idea collection"),
    "review_starts_at": lazy("review"),
    "voting_starts_at": lazy("start of voting"),
    "voting_ends_at": lazy("end of voting"),
    "results_at": lazy("results"),
}


def preflight(db: Session, process: Process, now: dt.datetime | None = None) -> list[Issue]:
    """Everything that stops the vote from opening, as data (empty list: ready)."""
    from voting.rules import RuleError, check_rule

    now = now or utcnow()
    issues: list[Issue] = []
    all_scopes = scopes(db, process)
    budgets = {s.id: s for s in all_scopes if s.id}
    projects = _projects(db, process)
    if not projects:
        issues.append(Issue("no_projects"))
    for project in projects:
        sid = project_scope(process, project, set(budgets))
        if project.cost_cents is None:
            issues.append(Issue("project_without_cost", {"project": project.title}))
        if sid is None:
            issues.append(Issue("project_without_ballot", {"project": project.title}))
        elif project.cost_cents is not None:
            budget = process.budget_cents if sid == 0 else budgets[sid].budget_cents
            if project.cost_cents > budget:
                issues.append(
                    Issue(
                        "project_over_budget",
                        {"project": project.title, "cost": project.cost_cents, "budget": budget},
                    )
                )
    if process.has_district_ballots and not budgets:
        issues.append(Issue("no_district_budgets"))
    if not process.has_district_ballots and _budgets(db, process):
        issues.append(Issue("district_budgets_unused"))
    issues += _date_issues(process, now)
    issues += _limit_issues(process, all_scopes)
    if process.ballot_type in BALLOT_TYPES:
        try:
            check_rule(process.rule, VOTE_TYPE[BallotType(process.ballot_type)])
        except RuleError:
            issues.append(Issue("rule_not_applicable"))
    if eligible_districts(process) - set(district_names(db)):
        issues.append(Issue("eligible_district_unknown"))
    if process.frozen_at is not None and process.projects_hash != projects_hash(frozen_projects(all_scopes)):
        issues.append(Issue("projects_changed"))
    return issues


def _date_issues(process: Process, now: dt.datetime) -> list[Issue]:
    issues = []
    start, end = process.voting_starts_at, process.voting_ends_at
    if start is None or end is None:
        issues.append(Issue("voting_dates_missing"))
    elif end <= start:
        issues.append(Issue("voting_ends_before_start"))
    elif process.voting_opened_at is None and end <= now:
        issues.append(Issue("voting_end_passed"))
    dated = [(name, getattr(process, name)) for name in DATE_LABELS if getattr(process, name) is not None]
    for (first, a), (second, b) in zip(dated, dated[1:], strict=False):
        if b < a and not (first, second) == ("voting_starts_at", "voting_ends_at"):
            issues.append(
                Issue(
                    "dates_out_of_order", {"first": _(DATE_LABELS[first]), "second": _(DATE_LABELS[second])}
                )
            )
    return issues


def _limit_issues(process: Process, all_scopes: list[Scope]) -> list[Issue]:
    if process.ballot_type not in BALLOT_TYPES:
        return [Issue("unknown_ballot_type")]
    issues = []
    kind = process.ballot_type
    if process.max_choices is not None and process.max_choices < 1:
        issues.append(Issue("max_choices_zero"))
    if kind == BallotType.CUMULATIVE:
        if not process.points_total or not process.points_per_project or process.points_per_project < 1:
            issues.append(Issue("points_missing"))
        elif process.min_choices > process.points_total:
            issues.append(Issue("min_choices_over_points"))
    for s in all_scopes:
        if not s.projects:
            issues.append(Issue("empty_ballot", {"ballot": s.label()}))
            continue
        if process.min_choices > len(s.projects):
            issues.append(Issue("min_choices_unreachable", {"ballot": s.label()}))
        elif kind == BallotType.KNAPSACK:
            cheapest = sorted(p.cost_cents or 0 for p in s.projects)[: max(1, process.min_choices)]
            if sum(cheapest) > s.budget_cents:
                issues.append(Issue("min_choices_over_budget", {"ballot": s.label()}))
    return issues


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
    stmt = select(Process).where(Process.id == process_id).with_for_update(read=shared)
    process = db.execute(stmt.execution_options(populate_existing=True)).scalar_one_or_none()
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
