"""Council staff set up participatory-budget processes and their projects.

Plain service functions (keyword-only arguments, never commit: the request's unit of work does):

- :func:`save_process` creates or edits a process: title, description (Markdown, stored sanitised), budget
  in integer cents, per-district sub-budgets, ballot type and limits, tally rule, eligibility and planned
  phase dates. Once the project list is frozen only title, description and the planned dates of the
  results may change (everything else is part of what voters were shown); once voting has opened the
  voting dates are fixed too.
- :func:`save_project` / :func:`delete_project` enter projects by hand, :func:`project_from_proposal` turns
  an accepted proposal into a project with one click. All three are refused after the freeze
  (:class:`AdminError` ``frozen``): the frozen list's hash is in the public log.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select
from sqlmodel import Session

from app.database import utcnow
from app.i18n import gettext as _
from app.sanitize import render_markdown
from voting.models import DistrictBudget, Process, Project

EDITABLE_WHEN_FROZEN = {"title", "description_md", "results_at", "voting_starts_at", "voting_ends_at"}
EDITABLE_WHEN_OPEN = {"title", "description_md", "results_at"}
MAX_CENTS = 10**13  # ten thousand billion cents: well above any municipal budget


class AdminError(Exception):
    """An administration step that is not allowed now; ``code`` is stable, ``message`` translated."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class ProcessData:
    """Cleaned values of the process form."""

    title: str
    description_md: str = ""
    budget_cents: int = 0
    ballot_type: str = "approval"
    min_choices: int = 0
    max_choices: int | None = None
    points_total: int | None = None
    points_per_project: int | None = None
    rule: str = "greedy"
    has_district_ballots: bool = False
    district_budgets: dict[int, int] = field(default_factory=dict)  # district id → cents
    min_age: int | None = None
    require_verified: bool = False
    eligible_district_ids: list[int] = field(default_factory=list)
    ideas_starts_at: dt.datetime | None = None
    review_starts_at: dt.datetime | None = None
    voting_starts_at: dt.datetime | None = None
    voting_ends_at: dt.datetime | None = None
    results_at: dt.datetime | None = None


def parse_euros(text: str) -> int:
    """An amount in euros as typed by German or English users → integer cents.

    Accepts ``1234``, ``1234,56``, ``1.234,56``, ``1,234.56``, ``1234.5``, an optional ``€``/``EUR``;
    a dot followed by exactly three digits is a thousands separator (German). Raises ValueError."""
    s = str(text).strip().replace("€", "").replace("EUR", "").replace("\u00a0", "").replace(" ", "")
    if not s or not re.fullmatch(r"[0-9.,]+|-[0-9.,]+", s):
        raise ValueError("not a number")
    negative = s.startswith("-")
    s = s.lstrip("-")
    if "," in s and "." in s:
        decimal = "," if s.rfind(",") > s.rfind(".") else "."
        thousands = "." if decimal == "," else ","
        s = s.replace(thousands, "").replace(decimal, ".")
    elif "," in s:
        if s.count(",") > 1:
            if not re.fullmatch(r"\d{1,3}(,\d{3})+", s):
                raise ValueError("not a number")
            s = s.replace(",", "")
        else:
            s = s.replace(",", ".")
    elif "." in s:
        if re.fullmatch(r"\d{1,3}(\.\d{3})+", s):
            s = s.replace(".", "")
        elif s.count(".") > 1:
            raise ValueError("not a number")
    whole, _sep, frac = s.partition(".")
    if (
        not whole
        and not frac
        or len(frac) > 2
        or (whole and not whole.isdigit())
        or (frac and not frac.isdigit())
    ):
        raise ValueError("not a number")
    cents = int(whole or "0") * 100 + int((frac + "00")[:2])
    if cents > MAX_CENTS:
        raise ValueError("too large")
    return -cents if negative else cents


def euros_text(cents: int | None) -> str:
    """Cents as the plain euro amount shown in form fields (``1234,50``)."""
    if cents is None:
        return ""
    whole, rest = divmod(cents, 100)
    return f"{whole},{rest:02d}" if rest else str(whole)


def _slug(title: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", title.lower().translate(str.maketrans("äöüß", "aous"))).strip("-")
    return f"{base[:48] or 'process'}-{secrets.token_hex(3)}"


def _minute(value: Any) -> Any:
    """Dates are typed to the minute: a stored date with seconds is unchanged if the minute is the same."""
    if isinstance(value, dt.datetime):
        return (
            value.astimezone(dt.UTC).replace(second=0, microsecond=0)
            if value.tzinfo
            else value.replace(second=0, microsecond=0)
        )
    return value


def _changed(process: Process, values: dict[str, Any]) -> set[str]:
    return {k for k, v in values.items() if _minute(getattr(process, k)) != _minute(v)}


def _current_budgets(db: Session, process: Process) -> dict[int, int]:
    rows = db.execute(select(DistrictBudget).where(DistrictBudget.process_id == process.id)).scalars()
    return {b.district_id: b.budget_cents for b in rows}


def save_process(
    db: Session, *, data: ProcessData, process: Process | None = None, user_id: int | None = None
) -> Process:
    """Create a process (``process`` None) or edit one; refuses changes the phase no longer allows."""
    values: dict[str, Any] = {
        "title": data.title,
        "description_md": data.description_md,
        "budget_cents": data.budget_cents,
        "ballot_type": data.ballot_type,
        "min_choices": data.min_choices,
        "max_choices": data.max_choices,
        "points_total": data.points_total,
        "points_per_project": data.points_per_project,
        "rule": data.rule,
        "has_district_ballots": data.has_district_ballots,
        "min_age": data.min_age,
        "require_verified": data.require_verified,
        "eligible_district_ids": ",".join(str(d) for d in sorted(set(data.eligible_district_ids))),
        "ideas_starts_at": data.ideas_starts_at,
        "review_starts_at": data.review_starts_at,
        "voting_starts_at": data.voting_starts_at,
        "voting_ends_at": data.voting_ends_at,
        "results_at": data.results_at,
    }
    budgets = dict(data.district_budgets) if data.has_district_ballots else {}
    if process is None:
        process = Process(slug=_slug(data.title), created_by_id=user_id, **values)
        process.description_html = render_markdown(data.description_md)
        db.add(process)
        db.flush()
    else:
        changed = _changed(process, values)
        if budgets != _current_budgets(db, process):
            changed.add("district_budgets")
        allowed = None
        if process.voting_opened_at is not None:
            allowed = EDITABLE_WHEN_OPEN
        elif process.frozen_at is not None:
            allowed = EDITABLE_WHEN_FROZEN
        if allowed is not None and changed - allowed:
            raise AdminError(
                "frozen",
                _("After the project list is frozen only the title, description and dates can be changed."),
            )
        for key in changed - {"district_budgets"}:  # unchanged dates keep their seconds
            setattr(process, key, values[key])
        if "description_md" in changed:
            process.description_html = render_markdown(data.description_md)
        process.updated_at = utcnow()
        if "district_budgets" not in changed:
            db.flush()
            return process
        db.execute(delete(DistrictBudget).where(DistrictBudget.process_id == process.id))
    for district_id, cents in sorted(budgets.items()):
        db.add(DistrictBudget(process_id=process.id, district_id=district_id, budget_cents=cents))
    db.flush()
    return process


def process_form_initial(db: Session, process: Process) -> dict[str, Any]:
    """The form's initial values of an existing process."""
    from voting.admin_forms import local_input

    initial: dict[str, Any] = {
        "title": process.title,
        "description": process.description_md,
        "budget": euros_text(process.budget_cents),
        "ballot_type": process.ballot_type,
        "min_choices": str(process.min_choices),
        "max_choices": "" if process.max_choices is None else str(process.max_choices),
        "points_total": "" if process.points_total is None else str(process.points_total),
        "points_per_project": "" if process.points_per_project is None else str(process.points_per_project),
        "rule": process.rule,
        "has_district_ballots": "on" if process.has_district_ballots else "",
        "min_age": "" if process.min_age is None else str(process.min_age),
        "require_verified": "on" if process.require_verified else "",
        "eligible_districts": [
            int(x) for x in process.eligible_district_ids.split(",") if x.strip().isdigit()
        ],
    }
    for name in ("ideas_starts_at", "review_starts_at", "voting_starts_at", "voting_ends_at", "results_at"):
        initial[name] = local_input(getattr(process, name))
    for district_id, cents in _current_budgets(db, process).items():
        initial[f"district_budget_{district_id}"] = euros_text(cents)
    return initial


# --- projects ------------------------------------------------------------------------------------------


@dataclass
class ProjectData:
    title: str
    description_md: str = ""
    cost_cents: int | None = None
    theme_id: int | None = None
    district_id: int | None = None
    feasibility_notes: str = ""


def _require_unfrozen(process: Process) -> None:
    if process.frozen_at is not None or process.voting_opened_at is not None:
        raise AdminError("frozen", _("The project list is frozen: projects can no longer be changed."))


def process_projects(db: Session, process: Process) -> list[Project]:
    stmt = select(Project).where(Project.process_id == process.id).order_by(Project.position, Project.id)
    return list(db.execute(stmt).scalars())


def _next_position(db: Session, process: Process) -> int:
    top = db.execute(select(func.max(Project.position)).where(Project.process_id == process.id)).scalar()
    return 0 if top is None else int(top) + 1


def save_project(
    db: Session, *, process: Process, data: ProjectData, project: Project | None = None
) -> Project:
    """Add a project to a process or edit one of its projects (refused after the freeze)."""
    _require_unfrozen(process)
    if project is None:
        project = Project(process_id=process.id, title=data.title, position=_next_position(db, process))
        db.add(project)
    elif project.process_id != process.id:
        raise AdminError("not_found", _("This project does not belong to the process."))
    project.title = data.title
    project.description_md = data.description_md
    project.description_html = render_markdown(data.description_md)
    project.cost_cents = data.cost_cents
    project.theme_id = data.theme_id
    project.district_id = data.district_id
    project.feasibility_notes = data.feasibility_notes
    db.flush()
    return project


def delete_project(db: Session, *, process: Process, project: Project) -> None:
    _require_unfrozen(process)
    if project.process_id != process.id:
        raise AdminError("not_found", _("This project does not belong to the process."))
    db.delete(project)
    db.flush()


def accepted_proposals(db: Session, process: Process) -> list[Any]:
    """Accepted proposals that are not yet a project of this process (candidates for one click)."""
    from proposals.models import Proposal, ProposalStatus

    taken = select(Project.proposal_id).where(
        Project.process_id == process.id, Project.proposal_id.is_not(None)
    )
    stmt = (
        select(Proposal)
        .where(Proposal.status == ProposalStatus.ACCEPTED.value, Proposal.id.not_in(taken))
        .order_by(Proposal.decided_at.desc().nulls_last(), Proposal.id.desc())
    )
    return list(db.execute(stmt).scalars())


def project_from_proposal(db: Session, *, process: Process, proposal_id: int) -> Project:
    """One click: an accepted proposal becomes a project (title, summary and body, cost, theme, district)."""
    from proposals.models import Proposal, ProposalStatus

    _require_unfrozen(process)
    proposal = db.get(Proposal, proposal_id)
    if proposal is None or proposal.status != ProposalStatus.ACCEPTED.value:
        raise AdminError("not_accepted", _("Only accepted proposals can become projects."))
    exists = db.execute(
        select(Project.id).where(Project.process_id == process.id, Project.proposal_id == proposal.id)
    ).first()
    if exists:
        raise AdminError("duplicate", _("This proposal is already a project of the process."))
    description = f"{proposal.summary}\n\n{proposal.body_md}".strip()
    project = save_project(
        db,
        process=process,
        data=ProjectData(
            title=proposal.title,
            description_md=description,
            cost_cents=proposal.cost_cents if proposal.cost_cents and proposal.cost_cents > 0 else None,
            theme_id=proposal.theme_id,
            district_id=proposal.district_id,
            feasibility_notes=proposal.status_reason,
        ),
    )
    project.proposal_id = proposal.id
    db.flush()
    return project
