"""Sequential Phragmen for approval ballots, in exact arithmetic."""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from .profile import APPROVAL_TYPES, Ballots, Number, group_ballots, prepare
from .result import OVER_BUDGET, STOPPED, ProjectFigures, RuleError, TallyResult


def phragmen(
    projects: Sequence[tuple[str, Number]], budget: Number, ballots: Ballots, *, vote_type: str
) -> TallyResult:
    """Sequential Phragmen (pabutools ``sequential_phragmen`` semantics).

    Voters earn money continuously; a project is bought as soon as its supporters together can pay for it,
    which leaves each of them with the same load: (their loads so far + cost) / number of supporters. The
    project with the smallest such load is bought next (ties: smaller id as a string); the rule stops as soon
    as that project (or one tied with it) does not fit the budget left. Projects that cost more than the
    whole budget are never considered; projects without votes come last (infinite load).

    ``selected`` is in buying order (pabutools returns the same set sorted by id).
    """
    if vote_type not in APPROVAL_TYPES:
        raise RuleError(f"sequential Phragmen needs approval ballots, not {vote_type}")
    el = prepare(projects, budget, ballots, vote_type)
    grouped, weight = group_ballots(el.ballots)
    scores = el.scores()
    result = TallyResult("phragmen", [], Fraction(0), el.money(el.budget))
    for k, pid in enumerate(el.ids):
        result.projects[pid] = ProjectFigures(pid, el.money(el.costs[k]), scores[k])
    n_groups = weight.size
    voter = grouped.voter_of_entry()
    items = grouped.items.astype(np.int64)
    approvals = np.bincount(items, weights=weight[voter], minlength=el.projects).astype(np.int64)
    order = np.argsort(items, kind="stable")
    starts = np.searchsorted(items[order], np.arange(el.projects + 1))
    supporters = [voter[order[starts[p] : starts[p + 1]]] for p in range(el.projects)]

    last = np.full(n_groups, -1, dtype=np.int64)  # round whose load a voter carries; -1: load 0
    # exact loads as integers over one common denominator: round t's load is level[t] / den, and the sum
    # of the loads of project p's supporters is load_sum[p] / den
    den = 1
    level: list[int] = []
    load_sum = [0] * el.projects
    remaining = [k for k in range(el.projects) if el.costs[k] <= el.budget]
    spent = 0
    chosen: list[int] = []
    # the load each project would give its supporters, None (infinite) without supporters
    candidate = [
        Fraction(el.costs[p], int(approvals[p])) if approvals[p] else None for p in range(el.projects)
    ]
    while remaining:
        best: Fraction | None = None
        tied: list[int] = []
        for p in remaining:
            new = candidate[p]
            if not tied or _less(new, best):
                best, tied = new, [p]
            elif new == best:
                tied.append(p)
        if any(spent + el.costs[p] > el.budget for p in tied):
            break
        s = min(tied, key=lambda k: int(el.lex_rank[k]))
        new_load = best if best is not None else Fraction(0)
        grow = math.lcm(den, new_load.denominator) // den
        if grow > 1:
            den *= grow
            level = [x * grow for x in level]
            load_sum = [x * grow for x in load_sum]
        level.append(new_load.numerator * (den // new_load.denominator))
        for q in _raise_loads(grouped, weight, supporters[s], last, level, load_sum):
            candidate[q] = Fraction(load_sum[q] + el.costs[q] * den, int(approvals[q]) * den)
        last[supporters[s]] = len(level) - 1
        remaining.remove(s)
        spent += el.costs[s]
        chosen.append(s)
        result.projects[el.ids[s]].position = len(chosen)
        result.projects[el.ids[s]].load = el.money(new_load)
    for k in range(el.projects):
        figures = result.projects[el.ids[k]]
        if figures.position is None:
            figures.reason = OVER_BUDGET if el.costs[k] > el.budget else STOPPED
            if el.costs[k] > el.budget - spent:
                figures.needed = el.money(el.costs[k] - (el.budget - spent))
    result.selected = [el.ids[k] for k in chosen]
    result.cost = el.money(spent)
    return result


def _less(a: Fraction | None, b: Fraction | None) -> bool:
    """a < b where None stands for an infinite load."""
    if a is None:
        return False
    return b is None or a < b


def _raise_loads(
    grouped: Ballots,
    weight: np.ndarray,
    who: np.ndarray,
    last: np.ndarray,
    level: list[int],
    load_sum: list[int],
) -> list[int]:
    """Give the voters ``who`` the newest load ``level[-1]``: update the projects' sums of supporter loads
    and return the projects whose sum changed."""
    if who.size == 0:
        return []
    lengths = grouped.indptr[who + 1] - grouped.indptr[who]
    entry = np.repeat(grouped.indptr[who] - np.r_[0, np.cumsum(lengths)[:-1]], lengths) + np.arange(
        int(lengths.sum()), dtype=np.int64
    )
    owner = np.repeat(who, lengths)
    width = len(level)  # column 0: load 0, column t + 1: round t's load
    key = grouped.items[entry].astype(np.int64) * width + (last[owner] + 1)
    counts = np.bincount(key, weights=weight[owner].astype(np.float64))
    new = level[-1]
    touched: list[int] = []
    for k in np.flatnonzero(counts).tolist():
        q, t = divmod(k, width)
        load_sum[q] += int(counts[k]) * (new - (level[t - 1] if t else 0))
        if not touched or touched[-1] != q:
            touched.append(q)
    return touched
