"""Compact election data for the tally rules.

Money (costs, budget) is kept exact as :class:`fractions.Fraction`: pabulib files may carry decimal amounts
("1000.5"), and a rule must never change its outcome through rounding. Inside the rules all amounts are
multiplied by one common ``scale`` (the least common multiple of their denominators, 1 for whole amounts) so
that they become Python integers; every rule is invariant under such a change of currency unit.

Ballots are stored CSR-style in numpy arrays (:class:`Ballots`): one flat array of project indices, the
offsets of each voter's ballot in it, and for point ballots one flat array of integer points. Memory is
proportional to the number of votes cast, with no Python object per vote.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

import numpy as np

APPROVAL_TYPES = ("approval", "choose-1")
POINT_TYPES = ("cumulative", "scoring")
VOTE_TYPES = APPROVAL_TYPES + POINT_TYPES + ("ordinal",)

Number = int | Fraction | Decimal | str | float


def to_fraction(value: Number) -> Fraction:
    """Exact value of a money amount or a number of points; strings may use a decimal comma."""
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    if isinstance(value, int | Fraction):
        return Fraction(value)
    if isinstance(value, Decimal):
        return Fraction(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"not a finite number: {value!r}")
        return Fraction(repr(value))
    text = str(value).strip().replace(",", ".")
    try:
        result = Fraction(text)
    except (ValueError, ZeroDivisionError) as exc:
        raise ValueError(f"not a number: {value!r}") from exc
    return result


@dataclass(frozen=True, eq=False)
class Ballots:
    """All ballots of an election, CSR-style.

    ``items[indptr[v]:indptr[v + 1]]`` are the indices (into the project list) of the projects on voter v's
    ballot, in ballot order (the ranking, for ordinal ballots). ``points`` (point ballots only) holds the
    points given to each of them as integers; the real number of points is ``points / points_scale``.
    """

    indptr: np.ndarray
    items: np.ndarray
    points: np.ndarray | None = None
    points_scale: int = 1

    def __post_init__(self) -> None:
        if self.indptr.ndim != 1 or self.indptr.size < 1 or self.indptr[0] != 0:
            raise ValueError("indptr must start with 0")
        if int(self.indptr[-1]) != self.items.size or np.any(np.diff(self.indptr) < 0):
            raise ValueError("indptr does not match items")
        if self.points is not None and self.points.shape != self.items.shape:
            raise ValueError("points must be aligned with items")
        if self.points is not None and self.points.size and int(self.points.min()) < 0:
            raise ValueError("points must not be negative")

    @property
    def voters(self) -> int:
        return self.indptr.size - 1

    def __len__(self) -> int:
        return self.voters

    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def voter_of_entry(self) -> np.ndarray:
        """For every entry of ``items``, the index of the voter it belongs to."""
        return np.repeat(np.arange(self.voters, dtype=np.int64), self.lengths())

    def ballot(self, voter: int) -> list[int]:
        return self.items[self.indptr[voter] : self.indptr[voter + 1]].tolist()

    @classmethod
    def from_lists(
        cls, votes: Sequence[Sequence[int]], points: Sequence[Sequence[Number]] | None = None
    ) -> Ballots:
        """Build from one list of project indices per voter (and, for point ballots, their points)."""
        lengths = np.fromiter((len(v) for v in votes), dtype=np.int64, count=len(votes))
        indptr = np.zeros(len(votes) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        items = np.fromiter((p for v in votes for p in v), dtype=np.int32, count=int(indptr[-1]))
        if points is None:
            return cls(indptr, items)
        flat = [to_fraction(x) for row in points for x in row]
        if len(flat) != items.size or any(len(r) != len(v) for r, v in zip(points, votes, strict=True)):
            raise ValueError("every vote needs exactly one number of points")
        scale = math.lcm(1, *(x.denominator for x in flat))
        ints = [int(x * scale) for x in flat]
        return cls(indptr, items, np.array(ints, dtype=np.int64), scale)


@dataclass(frozen=True, eq=False)
class Profile:
    """One election: projects (id, exact cost), the budget, the ballots and their vote type."""

    project_ids: tuple[str, ...]
    costs: tuple[Fraction, ...]
    budget: Fraction
    ballots: Ballots
    vote_type: str
    meta: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_election(
            list(zip(self.project_ids, self.costs, strict=True)), self.budget, self.ballots, self.vote_type
        )

    @property
    def projects(self) -> tuple[tuple[str, Fraction], ...]:
        return tuple(zip(self.project_ids, self.costs, strict=True))

    @property
    def voters(self) -> int:
        return self.ballots.voters

    @classmethod
    def build(
        cls,
        projects: Iterable[tuple[str, Number]],
        budget: Number,
        votes: Iterable[Sequence[str] | Mapping[str, Number]],
        vote_type: str = "approval",
        meta: Mapping[str, str] | None = None,
    ) -> Profile:
        """Build from project ids: a vote is a sequence of ids (approval, ordinal: best first) or, for
        point ballots, a mapping id -> points."""
        pairs = [(str(pid), to_fraction(cost)) for pid, cost in projects]
        index = {pid: k for k, (pid, _) in enumerate(pairs)}
        rows: list[list[int]] = []
        pts: list[list[Number]] = []
        for vote in votes:
            if isinstance(vote, Mapping):
                rows.append([index[str(pid)] for pid in vote])
                pts.append(list(vote.values()))
            else:
                rows.append([index[str(pid)] for pid in vote])
                pts.append([1] * len(rows[-1]))
        ballots = Ballots.from_lists(rows, pts if vote_type in POINT_TYPES else None)
        return cls(
            tuple(p for p, _ in pairs),
            tuple(c for _, c in pairs),
            to_fraction(budget),
            ballots,
            vote_type,
            dict(meta or {}),
        )


def check_election(
    projects: Sequence[tuple[str, Fraction]], budget: Fraction, ballots: Ballots, vote_type: str
) -> None:
    """Raise ValueError unless projects, budget and ballots describe a consistent election."""
    if vote_type not in VOTE_TYPES:
        raise ValueError(f"unknown vote type {vote_type!r}")
    ids = [pid for pid, _ in projects]
    if len(set(ids)) != len(ids):
        raise ValueError("project ids must be unique")
    if budget < 0 or any(cost < 0 for _, cost in projects):
        raise ValueError("costs and budget must not be negative")
    if ballots.items.size and (int(ballots.items.min()) < 0 or int(ballots.items.max()) >= len(ids)):
        raise ValueError("a ballot refers to an unknown project")
    if (vote_type in POINT_TYPES) != (ballots.points is not None):
        raise ValueError(f"{vote_type} ballots {'need' if vote_type in POINT_TYPES else 'take no'} points")
    pairs = ballots.voter_of_entry() * max(len(ids), 1) + ballots.items
    pairs.sort()
    if pairs.size > 1 and bool((pairs[1:] == pairs[:-1]).any()):
        raise ValueError("a ballot names the same project twice")


@dataclass(frozen=True, eq=False)
class Election:
    """What the rules work on: integer money (original amount x ``scale``) and the tie-breaking order."""

    ids: tuple[str, ...]
    costs: tuple[int, ...]
    budget: int
    scale: int
    ballots: Ballots
    vote_type: str
    lex_rank: np.ndarray  # rank of each project id in ascending string order: smaller wins a tie

    @property
    def projects(self) -> int:
        return len(self.ids)

    def money(self, amount: int | Fraction) -> Fraction:
        """Back from integer money to the original currency."""
        return Fraction(amount) / self.scale

    def scores(self) -> list[Fraction]:
        """Votes (approval), total points (point ballots) or total rank score L - p (ordinal) per project."""
        b = self.ballots
        if self.vote_type in POINT_TYPES:
            assert b.points is not None
            totals = _int_bincount(b.items, b.points, self.projects)
            return [Fraction(int(t), b.points_scale) for t in totals]
        if self.vote_type == "ordinal":
            lengths = b.lengths()
            position = np.arange(b.items.size, dtype=np.int64) - np.repeat(b.indptr[:-1], lengths)
            score = np.repeat(lengths, lengths) - position
            return [Fraction(int(t)) for t in _int_bincount(b.items, score, self.projects)]
        return [Fraction(int(t)) for t in np.bincount(b.items, minlength=self.projects)]


def _int_bincount(index: np.ndarray, weights: np.ndarray, size: int) -> list[int]:
    """Exact integer bincount (numpy's weighted bincount works in floats)."""
    out = np.zeros(size, dtype=object)
    if index.size:
        order = np.argsort(index, kind="stable")
        idx = index[order]
        w = weights[order].astype(object)
        starts = np.flatnonzero(np.r_[True, idx[1:] != idx[:-1]])
        sums = np.add.reduceat(w, starts)
        out[idx[starts]] = sums
    return [int(x) for x in out]


def prepare(
    projects: Sequence[tuple[str, Number]], budget: Number, ballots: Ballots, vote_type: str
) -> Election:
    """Validate the inputs of a rule and convert money to integers."""
    pairs = [(str(pid), to_fraction(cost)) for pid, cost in projects]
    total = to_fraction(budget)
    check_election(pairs, total, ballots, vote_type)
    scale = math.lcm(1, total.denominator, *(c.denominator for _, c in pairs))
    ids = tuple(p for p, _ in pairs)
    rank = np.empty(len(ids), dtype=np.int64)
    rank[sorted(range(len(ids)), key=ids.__getitem__)] = np.arange(len(ids))
    return Election(
        ids, tuple(int(c * scale) for _, c in pairs), int(total * scale), scale, ballots, vote_type, rank
    )


def group_ballots(ballots: Ballots, *, ordered: bool = False) -> tuple[Ballots, np.ndarray]:
    """Merge identical ballots: the distinct ballots and how many voters cast each one (weights).

    Approval ballots are compared as sets (ballot order ignored) unless ``ordered``.
    """
    n = ballots.voters
    items, points, indptr = ballots.items, ballots.points, ballots.indptr
    if n == 0:
        return ballots, np.zeros(0, dtype=np.int64)
    voter = ballots.voter_of_entry()
    if not ordered and items.size:
        order = np.lexsort((items, voter))
        items = items[order]
        points = points[order] if points is not None else None
    lengths = ballots.lengths()
    longest = int(lengths.max(initial=0))
    width = 1 + longest * (2 if points is not None else 1)
    # one row per voter: length, projects, points; identical rows are identical ballots
    rows = np.full((n, width), -1, dtype=np.int64)
    rows[:, 0] = lengths
    position = np.arange(items.size, dtype=np.int64) - np.repeat(indptr[:-1], lengths)
    rows[voter, 1 + position] = items
    if points is not None:
        rows[voter, 1 + longest + position] = points
    order = np.lexsort(rows.T[::-1])
    ranked = rows[order]
    new = np.r_[True, np.any(ranked[1:] != ranked[:-1], axis=1)]
    group_of_sorted = np.cumsum(new) - 1
    first_of_group = np.minimum.reduceat(order, np.flatnonzero(new))
    firsts = np.sort(first_of_group)
    weight = np.bincount(np.searchsorted(firsts, first_of_group[group_of_sorted]), minlength=firsts.size)
    starts = indptr[firsts]
    sizes = indptr[firsts + 1] - starts
    new_indptr = np.zeros(firsts.size + 1, dtype=np.int64)
    np.cumsum(sizes, out=new_indptr[1:])
    take = np.repeat(starts - new_indptr[:-1], sizes) + np.arange(int(new_indptr[-1]), dtype=np.int64)
    grouped = Ballots(
        new_indptr, items[take], points[take] if points is not None else None, ballots.points_scale
    )
    return grouped, weight.astype(np.int64)
