"""Forms of the staff pages: a process and a project. Money is typed in euros (German or English
notation) and stored as integer cents; dates are typed in local time (Europe/Berlin) and stored in UTC."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from app.forms import FieldError, Form, text
from app.i18n import BERLIN
from app.i18n import gettext as _
from voting.admin_services import ProcessData, ProjectData, parse_euros
from voting.models import BallotType, TallyRule
from voting.rules.registry import RULE_VOTE_TYPES

DATE_FIELDS = ("ideas_starts_at", "review_starts_at", "voting_starts_at", "voting_ends_at", "results_at")
VOTE_TYPE = {"approval": "approval", "knapsack": "approval", "cumulative": "cumulative", "ranked": "ordinal"}


def local_input(value: dt.datetime | None) -> str:
    """A UTC timestamp as the value of a ``datetime-local`` input (Berlin time)."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(BERLIN).strftime("%Y-%m-%dT%H:%M")


def parse_local(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    raw = value.strip()
    for fmt in (
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%d.%m.%Y %H:%M",
        "%Y-%m-%d",
        "%d.%m.%Y",
    ):
        try:
            parsed = dt.datetime.strptime(raw, fmt)
        except ValueError:
            continue
        return parsed.replace(tzinfo=BERLIN).astimezone(dt.UTC)
    raise FieldError(_("Please enter a date and time such as 2026-05-01T10:00."))


def money(value: Any, *, required: bool = True) -> int | None:
    if not isinstance(value, str) or not value.strip():
        if required:
            raise FieldError(_("This field is required."))
        return None
    try:
        cents = parse_euros(value)
    except ValueError:
        raise FieldError(_("Please enter an amount in euros, such as 12500 or 12.500,00.")) from None
    if cents <= 0:
        raise FieldError(_("The amount must be greater than zero."))
    return cents


def count(value: Any, *, required: bool = False, minimum: int = 0, maximum: int = 10_000) -> int | None:
    if not isinstance(value, str) or not value.strip():
        if required:
            raise FieldError(_("This field is required."))
        return None
    if not value.strip().isdigit() or len(value.strip()) > 6:
        raise FieldError(_("Please enter a whole number."))
    number = int(value.strip())
    if not minimum <= number <= maximum:
        raise FieldError(_("Please enter a number from %(min)s to %(max)s.", min=minimum, max=maximum))
    return number


def ballot_type_choices() -> list[tuple[str, str]]:
    return [
        (BallotType.APPROVAL.value, _("Approval: choose between a minimum and a maximum number of projects")),
        (BallotType.KNAPSACK.value, _("Knapsack: choose projects whose total cost fits the budget")),
        (BallotType.CUMULATIVE.value, _("Cumulative: distribute points")),
        (BallotType.RANKED.value, _("Ranked: order up to a number of projects")),
    ]


def rule_choices() -> list[tuple[str, str]]:
    return [
        (TallyRule.GREEDY.value, _("Greedy by votes (most cities today)")),
        (TallyRule.MES.value, _("Method of Equal Shares")),
        (TallyRule.MES_ADD1.value, _("Method of Equal Shares, completed by raising the voters' budget")),
        (TallyRule.MES_ADD1_GREEDY.value, _("Method of Equal Shares, completed, then filled greedily")),
        (TallyRule.PHRAGMEN.value, _("Sequential Phragmén")),
    ]


class ProcessForm(Form):
    """Create or edit a process. ``districts``: (id, name) of every district (sub-budgets, eligibility)."""

    base_fields = (
        "title",
        "description",
        "budget",
        "ballot_type",
        "min_choices",
        "max_choices",
        "points_total",
        "points_per_project",
        "rule",
        "has_district_ballots",
        "min_age",
        "require_verified",
        *DATE_FIELDS,
    )

    def __init__(
        self,
        data: Any = None,
        initial: Mapping[str, Any] | None = None,
        *,
        districts: Sequence[tuple[int, str]] = (),
    ) -> None:
        self.districts = list(districts)
        self.fields = (*self.base_fields, *(f"district_budget_{d}" for d, _n in self.districts))
        super().__init__(data, initial)
        self.eligible: list[int] = []
        if data is not None and hasattr(data, "getlist"):
            self.eligible = [int(v) for v in data.getlist("eligible_districts") if str(v).isdigit()]
        elif initial:
            self.eligible = list(initial.get("eligible_districts", []))
        self.data_given = data is not None

    def clean_title(self, value: Any) -> str:
        return text(value, min_len=3, max_len=200)

    def clean_description(self, value: Any) -> str:
        return text(value, required=False, max_len=20_000)

    def clean_budget(self, value: Any) -> int | None:
        return money(value)

    def clean_ballot_type(self, value: Any) -> str:
        if value not in {b.value for b in BallotType}:
            raise FieldError(_("Please choose a ballot type."))
        return value

    def clean_rule(self, value: Any) -> str:
        if value not in {r.value for r in TallyRule}:
            raise FieldError(_("Please choose a tally rule."))
        return value

    def clean_min_choices(self, value: Any) -> int:
        return count(value) or 0

    def clean_max_choices(self, value: Any) -> int | None:
        return count(value, minimum=1)

    def clean_points_total(self, value: Any) -> int | None:
        return count(value, minimum=1)

    def clean_points_per_project(self, value: Any) -> int | None:
        return count(value, minimum=1)

    def clean_min_age(self, value: Any) -> int | None:
        return count(value, maximum=120)

    def clean_has_district_ballots(self, value: Any) -> bool:
        return value in ("on", "1", "true", True)

    def clean_require_verified(self, value: Any) -> bool:
        return value in ("on", "1", "true", True)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("clean_district_budget_"):
            return lambda value: money(value, required=False)
        if name.startswith("clean_") and name[6:] in DATE_FIELDS:
            return parse_local
        raise AttributeError(name)

    def value(self, name: str) -> Any:
        if self.data_given and name in ("has_district_ballots", "require_verified"):
            return self.data.get(name, "")
        return super().value(name)

    def clean(self) -> None:
        c = self.cleaned
        known = {d for d, _n in self.districts}
        if any(d not in known for d in self.eligible):
            self.add_error("__all__", _("Please choose districts from the list."))
        if c.get("max_choices") is not None and c["max_choices"] < c.get("min_choices", 0):
            self.add_error("max_choices", _("The maximum must not be smaller than the minimum."))
        if c.get("ballot_type") == BallotType.CUMULATIVE.value:
            if c.get("points_total") is None:
                self.add_error("points_total", _("Cumulative ballots need a number of points."))
            if c.get("points_per_project") is None:
                self.add_error("points_per_project", _("Cumulative ballots need a maximum per project."))
        if c.get("ballot_type") and c.get("rule"):
            if VOTE_TYPE[c["ballot_type"]] not in RULE_VOTE_TYPES[c["rule"]]:
                self.add_error("rule", _("This tally rule cannot count this ballot type."))
        start, end = c.get("voting_starts_at"), c.get("voting_ends_at")
        if start and end and end <= start:
            self.add_error("voting_ends_at", _("Voting must end after it starts."))
        dates = [(n, c.get(n)) for n in DATE_FIELDS if c.get(n)]
        for (_first, a), (second, b) in zip(dates, dates[1:], strict=False):
            if b < a and second != "voting_ends_at":
                self.add_error(second, _("This date must not be before the previous phase."))
        if c.get("has_district_ballots") and not any(
            c.get(f"district_budget_{d}") for d, _n in self.districts
        ):
            self.add_error("has_district_ballots", _("Enter a sub-budget for at least one district."))
        if self.errors:
            raise FieldError(_("Please correct the marked fields."))

    def data_object(self) -> ProcessData:
        c = self.cleaned
        return ProcessData(
            title=c["title"],
            description_md=c["description"],
            budget_cents=c["budget"],
            ballot_type=c["ballot_type"],
            min_choices=c["min_choices"],
            max_choices=c["max_choices"],
            points_total=c["points_total"] if c["ballot_type"] == "cumulative" else None,
            points_per_project=c["points_per_project"] if c["ballot_type"] == "cumulative" else None,
            rule=c["rule"],
            has_district_ballots=c["has_district_ballots"],
            district_budgets={
                d: c[f"district_budget_{d}"] for d, _n in self.districts if c.get(f"district_budget_{d}")
            },
            min_age=c["min_age"],
            require_verified=c["require_verified"],
            eligible_district_ids=self.eligible,
            **{n: c[n] for n in DATE_FIELDS},
        )


class ProjectForm(Form):
    fields = ("title", "description", "cost", "theme", "district", "feasibility_notes")

    def __init__(
        self,
        data: Any = None,
        initial: Mapping[str, Any] | None = None,
        *,
        themes: Sequence[tuple[int, str]] = (),
        districts: Sequence[tuple[int, str]] = (),
    ) -> None:
        super().__init__(data, initial)
        self.themes = list(themes)
        self.districts = list(districts)

    def clean_title(self, value: Any) -> str:
        return text(value, min_len=3, max_len=200)

    def clean_description(self, value: Any) -> str:
        return text(value, required=False, max_len=20_000)

    def clean_cost(self, value: Any) -> int | None:
        return money(value, required=False)

    def _pick(self, value: Any, options: list[tuple[int, str]]) -> int | None:
        if value in ("", None):
            return None
        if not str(value).isdigit() or int(value) not in {k for k, _n in options}:
            raise FieldError(_("Please choose from the list."))
        return int(value)

    def clean_theme(self, value: Any) -> int | None:
        return self._pick(value, self.themes)

    def clean_district(self, value: Any) -> int | None:
        return self._pick(value, self.districts)

    def clean_feasibility_notes(self, value: Any) -> str:
        return text(value, required=False, max_len=5000)

    def data_object(self) -> ProjectData:
        c = self.cleaned
        return ProjectData(
            title=c["title"],
            description_md=c["description"],
            cost_cents=c["cost"],
            theme_id=c["theme"],
            district_id=c["district"],
            feasibility_notes=c["feasibility_notes"],
        )
