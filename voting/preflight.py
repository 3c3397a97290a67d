"""The pre-flight check of a budget vote: the issues that must be fixed before its project list is frozen
and voting opens. Split from voting/lifecycle.py, which re-exports these names.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from app.database import utcnow
from app.i18n import format_cents, lazy
from app.i18n import gettext as _
from voting.models import BallotType, Process
from voting.scopes import (
    VOTE_TYPE,
    Scope,
    budgets_of,
    district_names,
    eligible_districts,
    frozen_projects,
    project_scope,
    projects_hash,
    projects_of,
    scopes,
)
from voting.selection import BALLOT_TYPES

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
    projects = projects_of(db, process)
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
    if not process.has_district_ballots and budgets_of(db, process):
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
