"""What a tally rule returns: the selection and per-project figures for explanations."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction


class RuleError(ValueError):
    """A rule cannot be applied to these ballots (e.g. sequential Phragmen on cumulative ballots)."""


# Why a project was not funded.
NO_VOTES = "no-votes"  # nobody voted for it (MES cannot fund it)
DID_NOT_FIT = "did-not-fit"  # its turn came but it cost more than the budget left
SUPPORTERS_SHORT = "supporters-budget-insufficient"  # MES: its supporters' money left was less than its cost
STOPPED = "stopped"  # sequential Phragmen stopped before reaching it
OVER_BUDGET = "over-budget"  # costs more than the whole budget

REASONS = {
    NO_VOTES: "no votes",
    DID_NOT_FIT: "did not fit in the budget left",
    SUPPORTERS_SHORT: "its supporters' budget was insufficient",
    STOPPED: "the rule stopped before reaching it",
    OVER_BUDGET: "costs more than the whole budget",
}


@dataclass
class ProjectFigures:
    """Per-project figures. Money is exact, in the currency of the election.

    ``score``: votes (approval), points (cumulative) or rank score (ordinal).
    ``position``: 1-based place in the selection order, ``None`` if not funded.
    MES, funded: ``rho`` is the price per unit of utility at selection time. For approval ballots (cost
    utilities) it is the share of the cost that each supporter who could afford it paid, and ``price`` =
    rho * cost is that amount; for point ballots it is the money per point. ``payers`` supporters paid it
    in full, ``exhausted`` supporters paid all they had left (their budget did not reach the price).
    MES, not funded: ``available`` is what its supporters had left when the rule ended and ``needed`` the
    amount missing (cost - available). Greedy-like rules: ``needed`` is cost - budget left at its turn.
    Phragmen: ``load`` is each supporter's load after buying it.
    """

    project_id: str
    cost: Fraction
    score: Fraction
    position: int | None = None
    reason: str | None = None
    rho: Fraction | None = None
    price: Fraction | None = None
    payers: int | None = None
    exhausted: int | None = None
    available: Fraction | None = None
    needed: Fraction | None = None
    load: Fraction | None = None
    stage: str | None = None  # for composed rules: which part funded it ("mes", "greedy")

    @property
    def selected(self) -> bool:
        return self.position is not None

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"project_id": self.project_id, "selected": self.selected}
        for key in (
            "cost",
            "score",
            "position",
            "reason",
            "rho",
            "price",
            "payers",
            "exhausted",
            "available",
            "needed",
            "load",
            "stage",
        ):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


@dataclass
class TallyResult:
    """Outcome of a rule: ``selected`` project ids in selection order, their total ``cost``, the ``budget``,
    per-project figures (in the order the projects were given) and rule-specific details (e.g. the
    per-voter budget MES ended with)."""

    rule: str
    selected: list[str]
    cost: Fraction
    budget: Fraction
    projects: dict[str, ProjectFigures] = field(default_factory=dict)
    details: dict[str, object] = field(default_factory=dict)

    @property
    def leftover(self) -> Fraction:
        return self.budget - self.cost
