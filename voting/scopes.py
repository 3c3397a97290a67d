"""The ballots ("scopes") of a budget vote: scope 0 is the city-wide ballot with ``Process.budget_cents``;
with ``has_district_ballots`` every district that has a ``DistrictBudget`` has its own ballot (scope =
district id) with that district's projects. Also the frozen project list and its hash. Split from
voting/lifecycle.py, which re-exports these names.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from app.i18n import gettext as _
from voting.merkle import canonical_json
from voting.models import BallotType, DistrictBudget, Process, Project
from voting.selection import BallotConfig

# How the tally rules see each ballot type (voting/rules vote types).
VOTE_TYPE = {
    BallotType.APPROVAL: "approval",
    BallotType.KNAPSACK: "approval",
    BallotType.CUMULATIVE: "cumulative",
    BallotType.RANKED: "ordinal",
}


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


def projects_of(db: Session, process: Process) -> list[Project]:
    stmt = select(Project).where(Project.process_id == process.id).order_by(Project.position, Project.id)
    return list(db.execute(stmt).scalars())


def budgets_of(db: Session, process: Process) -> list[DistrictBudget]:
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
    budgets = budgets_of(db, process) if process.has_district_ballots else []
    # District names only title district ballots: no query for a city-wide-only process (every cast).
    names = district_names(db) if budgets else {}
    out = {0: Scope(0, process.budget_cents)}
    for b in sorted(budgets, key=lambda b: names.get(b.district_id, "")):
        out[b.district_id] = Scope(b.district_id, b.budget_cents, names.get(b.district_id, "?"))
    for project in projects_of(db, process):
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
