"""Ballot forms: plain HTML inputs (checkboxes, number inputs, rank selects) parsed into a selection, the
live summary shown while a resident builds a ballot, the paper-ballot form and the staff confirmations.

Every value is parsed positively (digits only, bounded length); anything else is a field error, never an
exception. The selection is then checked by voting/selection.py, the same rules the server applies when
the ballot is cast and the verifier applies to the log.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app import forms
from app.forms import FieldError, Form
from app.i18n import gettext as _
from app.i18n import lazy
from voting.ballots import UNREADABLE, selection_message
from voting.lifecycle import Scope, ballot_config
from voting.models import BallotType, Process, Project
from voting.selection import InvalidSelection, validate

MAX_ID_DIGITS = 12
MAX_SELECTION_CHARS = 20_000
PROJECT = "project"  # approval, knapsack: checkboxes name="project" value=<id>
POINTS = "points-"  # cumulative: name="points-<id>"
RANK = "rank-"  # ranked: name="rank-<id>" value 1..K (empty: not ranked)
NOT_A_NUMBER = lazy("Please enter a whole number of points.")
BAD_RANK = lazy("Please choose a rank from the list.")
SAME_RANK = lazy("Each rank can be given to one project only.")


def _getlist(data: Any, name: str) -> list[Any]:
    if hasattr(data, "getlist"):
        return list(data.getlist(name))
    value = data.get(name) if isinstance(data, Mapping) else None
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _digits(value: Any, max_digits: int = MAX_ID_DIGITS) -> int | None:
    if (
        isinstance(value, str)
        and value.strip().isascii()
        and value.strip().isdigit()
        and len(value.strip()) <= max_digits
    ):
        return int(value.strip())
    return None


@dataclass
class BallotInput:
    """What the resident has filled in so far: the raw selection and any unreadable fields.

    ``values`` keeps what was submitted, for re-rendering the form (checked boxes, points, ranks)."""

    process: Process
    scope: Scope
    raw: list[int] | dict[str, int] | None = None
    errors: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.process.ballot_type

    @property
    def max_rank(self) -> int:
        return min(len(self.scope.projects), self.process.max_choices or len(self.scope.projects))

    @classmethod
    def parse(cls, process: Process, scope: Scope, data: Any) -> BallotInput:
        self = cls(process, scope)
        keys = list(data.keys()) if hasattr(data, "keys") else []
        if self.kind in (BallotType.APPROVAL, BallotType.KNAPSACK):
            ids = []
            for value in _getlist(data, PROJECT):
                pid = _digits(value)
                if pid is None:
                    self.errors["selection"] = _(UNREADABLE)
                    continue
                ids.append(pid)
                self.values[f"{PROJECT}-{pid}"] = "on"
            self.raw = ids
        elif self.kind == BallotType.CUMULATIVE:
            points: dict[str, int] = {}
            for key in keys:
                if not key.startswith(POINTS):
                    continue
                pid = _digits(key[len(POINTS) :])
                value = str(_getlist(data, key)[-1] or "").strip()
                self.values[key] = value[:12]
                if pid is None:
                    self.errors["selection"] = _(UNREADABLE)
                elif value:
                    amount = _digits(value, 6)
                    if amount is None:
                        self.errors[key] = _(NOT_A_NUMBER)
                    elif amount:
                        points[str(pid)] = amount
            self.raw = points
        elif self.kind == BallotType.RANKED:
            ranks: dict[int, int] = {}
            for key in keys:
                if not key.startswith(RANK):
                    continue
                pid = _digits(key[len(RANK) :])
                value = str(_getlist(data, key)[-1] or "").strip()
                self.values[key] = value[:6]
                if pid is None:
                    self.errors["selection"] = _(UNREADABLE)
                elif value:
                    rank = _digits(value, 4)
                    if rank is None or not 1 <= rank <= max(self.max_rank, 1):
                        self.errors[key] = _(BAD_RANK)
                    else:
                        ranks[pid] = rank
            seen: dict[int, int] = {}
            for pid, rank in sorted(ranks.items()):
                if rank in seen:
                    self.errors[f"{RANK}{pid}"] = self.errors[f"{RANK}{seen[rank]}"] = _(SAME_RANK)
                seen[rank] = pid
            self.raw = sorted(ranks, key=lambda pid: (ranks[pid], pid))
        return self

    @classmethod
    def from_selection(cls, process: Process, scope: Scope, selection: Any) -> BallotInput:
        """Pre-fill the form from a stored (canonical) selection."""
        self = cls(process, scope, raw=selection)
        if isinstance(selection, dict):
            self.values = {f"{POINTS}{pid}": str(n) for pid, n in selection.items()}
        elif self.kind == BallotType.RANKED:
            self.values = {f"{RANK}{pid}": str(k) for k, pid in enumerate(selection, start=1)}
        else:
            self.values = {f"{PROJECT}-{pid}": "on" for pid in selection}
        return self

    def move(self, instruction: str) -> None:
        """Ranked ballots without JavaScript: "<id>:up" / "<id>:down" swaps a project with its neighbour."""
        if self.kind != BallotType.RANKED or not isinstance(self.raw, list) or self.errors:
            return
        match = re.fullmatch(r"(\d{1,12}):(up|down)", instruction or "")
        if not match or int(match.group(1)) not in self.raw:
            return
        order = list(self.raw)
        k = order.index(int(match.group(1)))
        j = k - 1 if match.group(2) == "up" else k + 1
        if 0 <= j < len(order):
            order[k], order[j] = order[j], order[k]
        self.raw = order
        self.values = {f"{RANK}{pid}": str(n) for n, pid in enumerate(order, start=1)}

    # for the templates
    def checked(self, project: Project) -> bool:
        return self.values.get(f"{PROJECT}-{project.id}") == "on"

    def value(self, name: str) -> str:
        return self.values.get(name, "")

    def summary(self) -> Summary:
        return Summary.of(self)


@dataclass
class Summary:
    """The live summary next to the ballot: what is chosen, money and points left, and what is wrong."""

    kind: str
    chosen: list[tuple[Project, int]]  # (project, points or rank or 1), in ballot order
    total_cents: int
    budget_cents: int
    points_used: int
    points_total: int | None
    min_choices: int
    max_choices: int | None
    problem: str | None
    canonical: list[int] | dict[str, int] | None

    @property
    def remaining_cents(self) -> int:
        return self.budget_cents - self.total_cents

    @property
    def points_left(self) -> int | None:
        return None if self.points_total is None else self.points_total - self.points_used

    @property
    def is_valid(self) -> bool:
        return self.canonical is not None

    @property
    def selection_json(self) -> str:
        return json.dumps(self.canonical, separators=(",", ":")) if self.canonical is not None else ""

    @classmethod
    def of(cls, ballot: BallotInput) -> Summary:
        process, scope = ballot.process, ballot.scope
        by_id = {p.id: p for p in scope.projects}
        raw = ballot.raw if ballot.raw is not None else []
        if isinstance(raw, dict):
            pairs = [(int(pid), n) for pid, n in raw.items()]
        else:
            pairs = [(pid, k) for k, pid in enumerate(raw, start=1)]
        chosen = [(by_id[pid], n) for pid, n in pairs if pid in by_id]
        problem, canonical = None, None
        if ballot.errors:
            problem = next(iter(ballot.errors.values()))
        else:
            try:
                canonical = validate(ballot_config(process, scope), raw)
            except InvalidSelection as exc:
                problem = selection_message(exc)
        return cls(
            kind=process.ballot_type,
            chosen=chosen,
            total_cents=sum(p.cost_cents or 0 for p, _n in chosen),
            budget_cents=scope.budget_cents,
            points_used=sum(n for _p, n in chosen) if isinstance(raw, dict) else 0,
            points_total=process.points_total,
            min_choices=process.min_choices,
            max_choices=process.max_choices,
            problem=problem,
            canonical=canonical,
        )


def parse_selection_json(text: Any) -> Any:
    """The selection sent by the confirmation step (JSON); FieldError if it is not readable JSON."""
    if not isinstance(text, str) or not text or len(text) > MAX_SELECTION_CHARS:
        raise FieldError(_(UNREADABLE))
    try:
        return json.loads(text)
    except ValueError as exc:
        raise FieldError(_(UNREADABLE)) from exc


def parse_scope(value: Any, allowed: list[int]) -> int | None:
    scope = _digits("0" if value is None or value == "" else str(value))
    return scope if scope is not None and scope in allowed else None


REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ./_-]{0,63}")


class PaperForm(Form):
    """The paper ballot's origin; its selection is parsed by :class:`BallotInput`."""

    fields = ("polling_station", "reference")

    def clean_polling_station(self, value: Any) -> str:
        return forms.text(value, max_len=120)

    def clean_reference(self, value: Any) -> str:
        value = forms.text(value, max_len=64)
        if not REFERENCE.fullmatch(value):
            raise FieldError(
                _("Please enter the number printed on the paper ballot (letters, digits, - / .).")
            )
        return value


class ConfirmForm(Form):
    """A checkbox that must be ticked before an irreversible step."""

    fields = ("confirm",)

    def clean_confirm(self, value: Any) -> bool:
        if value != "on":
            raise FieldError(_("Please confirm this step."))
        return True
