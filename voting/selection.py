"""What a valid ballot is: pure validation and canonical form of a selection, shared by the web ballot,
paper-ballot entry, the audit-log replay and the independent verifier (no framework imports).

Selections (JSON):
- approval, knapsack: a list of project ids (order irrelevant; canonical: ascending);
- ranked: a list of project ids, most preferred first (canonical: as given);
- cumulative: an object {project id (as string): points} (canonical: keys ascending, zero entries dropped).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

BALLOT_TYPES = ("approval", "knapsack", "cumulative", "ranked")


@dataclass(frozen=True)
class BallotConfig:
    """The rules of one ballot (one scope of a process)."""

    ballot_type: str
    budget_cents: int
    project_costs: Mapping[int, int] = field(default_factory=dict)  # project id -> cost in cents
    min_choices: int = 0
    max_choices: int | None = None
    points_total: int | None = None
    points_per_project: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "ballot_type": self.ballot_type,
            "budget_cents": self.budget_cents,
            "projects": {str(k): v for k, v in sorted(self.project_costs.items())},
            "min_choices": self.min_choices,
            "max_choices": self.max_choices,
            "points_total": self.points_total,
            "points_per_project": self.points_per_project,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BallotConfig:
        return cls(
            ballot_type=str(data["ballot_type"]),
            budget_cents=int(data["budget_cents"]),
            project_costs={int(k): int(v) for k, v in dict(data["projects"]).items()},
            min_choices=int(data.get("min_choices") or 0),
            max_choices=None if data.get("max_choices") is None else int(data["max_choices"]),
            points_total=None if data.get("points_total") is None else int(data["points_total"]),
            points_per_project=None
            if data.get("points_per_project") is None
            else int(data["points_per_project"]),
        )


class InvalidSelection(ValueError):
    """The selection breaks a rule of the ballot. ``code`` is stable (for translations and the verifier)."""

    def __init__(self, code: str, **details: Any):
        super().__init__(code + (" " + ", ".join(f"{k}={v}" for k, v in details.items()) if details else ""))
        self.code = code
        self.details = details


def _ids(raw: Any) -> list[int]:
    if not isinstance(raw, list):
        raise InvalidSelection("not_a_list")
    ids: list[int] = []
    for item in raw:
        if isinstance(item, bool) or not isinstance(item, int | str):
            raise InvalidSelection("bad_project_id")
        try:
            ids.append(int(item))
        except ValueError as exc:
            raise InvalidSelection("bad_project_id") from exc
    return ids


def validate(config: BallotConfig, raw: Any) -> list[int] | dict[str, int]:
    """Return the canonical selection, or raise InvalidSelection naming the broken rule."""
    kind = config.ballot_type
    if kind not in BALLOT_TYPES:
        raise InvalidSelection("unknown_ballot_type", ballot_type=kind)
    if kind == "cumulative":
        return _validate_points(config, raw)
    ids = _ids(raw)
    if len(set(ids)) != len(ids):
        raise InvalidSelection("duplicate_project")
    unknown = [i for i in ids if i not in config.project_costs]
    if unknown:
        raise InvalidSelection("unknown_project", project=unknown[0])
    if not ids:
        raise InvalidSelection("empty")
    if len(ids) < config.min_choices:
        raise InvalidSelection("too_few", minimum=config.min_choices)
    if config.max_choices is not None and len(ids) > config.max_choices:
        raise InvalidSelection("too_many", maximum=config.max_choices)
    if kind == "knapsack":
        total = sum(config.project_costs[i] for i in ids)
        if total > config.budget_cents:
            raise InvalidSelection("over_budget", total=total, budget=config.budget_cents)
    return ids if kind == "ranked" else sorted(ids)


def _validate_points(config: BallotConfig, raw: Any) -> dict[str, int]:
    if not isinstance(raw, Mapping):
        raise InvalidSelection("not_an_object")
    points: dict[int, int] = {}
    for key, value in raw.items():
        try:
            pid = int(key)
        except (TypeError, ValueError) as exc:
            raise InvalidSelection("bad_project_id") from exc
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidSelection("bad_points", project=pid)
        if pid not in config.project_costs:
            raise InvalidSelection("unknown_project", project=pid)
        if pid in points:
            raise InvalidSelection("duplicate_project")
        if value:
            points[pid] = value
    total = sum(points.values())
    if total == 0:
        raise InvalidSelection("empty")
    if config.points_per_project is not None and max(points.values()) > config.points_per_project:
        raise InvalidSelection("too_many_points_for_project", maximum=config.points_per_project)
    if config.points_total is not None and total > config.points_total:
        raise InvalidSelection("too_many_points", maximum=config.points_total)
    if len(points) < config.min_choices:
        raise InvalidSelection("too_few", minimum=config.min_choices)
    if config.max_choices is not None and len(points) > config.max_choices:
        raise InvalidSelection("too_many", maximum=config.max_choices)
    return {str(pid): points[pid] for pid in sorted(points)}
