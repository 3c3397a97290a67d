"""A second, independent implementation of the five tally rules for the verifier (standard library only).

The web app tallies with ``voting/rules`` (numpy, floats with proven error bounds, exact fallbacks). The
verifier must not trust that code, and a journalist's machine may have no numpy, so this module computes
the same outcomes again in a plainer way: integer and ``fractions.Fraction`` arithmetic throughout, no
floats anywhere. Agreement of the two implementations is tested on real pabulib elections and on random
ones (tests/voting/test_verifier_rules.py).

Semantics (pabutools 1.2.3, the research reference; ties always go to the smaller project id compared as
strings, so "10" comes before "9"):

* ``greedy``: projects by decreasing score (approvals; points for cumulative ballots; L - p for the project
  at position p of a ranking of length L), a project that no longer fits the budget left is skipped. A
  project of cost 0 scores 0 here (pabutools' density is satisfaction per cost).
* ``mes``: the Method of Equal Shares. Every voter starts with budget / voters. A project is *in the race*
  while its supporters' money adds up to at least its cost; its price r is the smallest price per unit of
  utility at which its supporters, each paying min(money left, r * utility), cover the cost. Each round the
  project with the smallest r is funded. Utility = cost for approval ballots (pabutools ``Cost_Sat``),
  points for cumulative ballots (``Additive_Cardinal_Sat``; supported projects of cost 0 are funded first).
* ``mes-add1``: MES with every voter's budget raised by one currency unit at a time: it returns the first
  outcome that leaves no supported project that would still fit, or the outcome just before the first one
  that costs more than the budget. Budgets at which the outcome provably cannot change are skipped: MES is
  run once on a whole interval of budgets, with every voter's money kept as an exact interval; if every
  decision of the run holds for the whole interval, so does the outcome (see ``_ApprovalMES.run``).
* ``mes-add1-greedy``: ``mes-add1``, then the money left is filled by ``greedy``.
* ``phragmen``: sequential Phragmen: a project is bought when its supporters can pay for it with equal
  loads; the smallest new load wins; the rule stops as soon as the winner (or a project tied with it) does
  not fit the budget left. Projects costing more than the whole budget are never considered.

Input: ``projects`` as ``(id, cost)`` pairs (ints or Fractions), the budget, and one vote per voter: a list
of project ids (approval), a list in order of preference (ordinal) or a mapping id -> points (cumulative).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

RULE_VOTE_TYPES = {
    "greedy": ("approval", "cumulative", "ordinal"),
    "mes": ("approval", "cumulative"),
    "mes-add1": ("approval",),
    "mes-add1-greedy": ("approval",),
    "phragmen": ("approval",),
}
VOTE_TYPE_ALIASES = {"choose-1": "approval", "scoring": "cumulative"}
MAX_MES_RUNS = 1_000_000


class TallyError(ValueError):
    """The election is malformed or the rule does not apply to its ballots."""


@dataclass(frozen=True)
class Outcome:
    """What a rule funds: project ids in funding order, their total cost and the budget (exact)."""

    rule: str
    selected: tuple[str, ...]
    cost: Fraction
    budget: Fraction


def _exact(value: object) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, int | Fraction | str):
        raise TallyError(f"not an exact amount: {value!r}")
    try:
        amount = Fraction(value)
    except (ValueError, ZeroDivisionError) as exc:
        raise TallyError(f"not an exact amount: {value!r}") from exc
    if amount < 0:
        raise TallyError(f"negative amount: {value!r}")
    return amount


class _Election:
    """Projects, integer money (amounts times ``scale``), grouped ballots and the tie-breaking rank."""

    def __init__(
        self,
        projects: Sequence[tuple[object, object]],
        budget: object,
        votes: Iterable[object],
        vote_type: str,
    ) -> None:
        self.vote_type = vote_type
        self.ids = [str(pid) for pid, _ in projects]
        if len(set(self.ids)) != len(self.ids):
            raise TallyError("project ids must be unique")
        costs = [_exact(cost) for _, cost in projects]
        total = _exact(budget)
        self.scale = math.lcm(1, total.denominator, *(c.denominator for c in costs))
        self.costs = [int(c * self.scale) for c in costs]
        self.budget = int(total * self.scale)
        self.n = len(self.ids)
        by_id = {pid: k for k, pid in enumerate(self.ids)}
        lex = sorted(range(self.n), key=self.ids.__getitem__)
        self.rank = [0] * self.n
        for position, k in enumerate(lex):
            self.rank[k] = position
        # Identical ballots are merged: key -> number of voters. Approval keys are sorted tuples of project
        # indices, ordinal keys tuples in ranking order, cumulative keys sorted (index, points) tuples.
        groups: dict[tuple, int] = {}
        voters = 0
        points_scale = 1
        raw: list[tuple] = []
        for vote in votes:
            voters += 1
            if vote_type == "cumulative":
                if not isinstance(vote, Mapping):
                    raise TallyError("a cumulative vote must map project ids to points")
                items = []
                for pid, pts in vote.items():
                    if str(pid) not in by_id:
                        raise TallyError(f"vote for an unknown project {pid!r}")
                    amount = _exact(pts)
                    points_scale = math.lcm(points_scale, amount.denominator)
                    items.append((by_id[str(pid)], amount))
                key = tuple(sorted(items))
            else:
                if isinstance(vote, Mapping | str | bytes) or not isinstance(vote, Iterable):
                    raise TallyError("a vote must be a list of project ids")
                try:
                    idx = [by_id[str(pid)] for pid in vote]
                except KeyError as exc:
                    raise TallyError(f"vote for an unknown project {exc.args[0]!r}") from exc
                key = tuple(idx) if vote_type == "ordinal" else tuple(sorted(idx))
            if len({k if isinstance(k, int) else k[0] for k in key}) != len(key):
                raise TallyError("a vote names the same project twice")
            raw.append(key)
        for key in raw:
            if vote_type == "cumulative":
                key = tuple((k, int(p * points_scale)) for k, p in key)
            groups[key] = groups.get(key, 0) + 1
        self.voters = voters
        self.groups = list(groups.items())  # [(key, weight)] in first-seen order

    def money(self, amount: int) -> Fraction:
        return Fraction(amount, self.scale)

    def scores(self) -> list[int]:
        """Approvals, total points or total rank score (L - p) per project, in voters (integers)."""
        out = [0] * self.n
        for key, weight in self.groups:
            if self.vote_type == "cumulative":
                for k, pts in key:
                    out[k] += weight * pts
            elif self.vote_type == "ordinal":
                length = len(key)
                for position, k in enumerate(key):
                    out[k] += weight * (length - position)
            else:
                for k in key:
                    out[k] += weight
        return out

    def outcome(self, rule: str, chosen: Sequence[int]) -> Outcome:
        return Outcome(
            rule,
            tuple(self.ids[k] for k in chosen),
            self.money(sum(self.costs[k] for k in chosen)),
            self.money(self.budget),
        )


# --- greedy ---------------------------------------------------------------------------------------------


def _greedy_fill(el: _Election, chosen: list[int]) -> list[int]:
    """Complete ``chosen`` greedily by score; projects of cost 0 count as score 0."""
    scores = el.scores()
    density = [s if c > 0 else 0 for s, c in zip(scores, el.costs, strict=True)]
    taken = set(chosen)
    left = el.budget - sum(el.costs[k] for k in chosen)
    out = list(chosen)
    for k in sorted(range(el.n), key=lambda k: (-density[k], el.rank[k])):
        if k not in taken and el.costs[k] <= left:
            left -= el.costs[k]
            out.append(k)
    return out


# --- Method of Equal Shares, approval ballots ---------------------------------------------------------------


class _Fail(Exception):
    """A decision of an interval run differs within the interval (the interval is too wide)."""


class _Side:
    """Every group's money as integer numerators over one denominator, and per project the number of its
    supporters who still have money."""

    __slots__ = ("money", "den", "alive")

    def __init__(self, per_voter: Fraction, groups: int, approvals: list[int]) -> None:
        self.money = [per_voter.numerator] * groups
        self.den = per_voter.denominator
        self.alive = list(approvals)


class _ApprovalMES:
    """MES with cost utilities: every supporter of project p is asked the same amount q (= r * cost).

    Money is exact: each side of an interval run (``_Side``) keeps integer numerators over one common
    denominator ``D`` per side (one number per group of identical ballots, every voter of a group has the
    same money at all times).
    """

    def __init__(self, el: _Election) -> None:
        self.el = el
        self.weights = [w for _, w in el.groups]
        self.sup: list[list[int]] = [[] for _ in range(el.n)]
        for g, (key, _w) in enumerate(el.groups):
            for k in key:
                self.sup[k].append(g)
        self.approvals = [sum(self.weights[g] for g in s) for s in self.sup]
        self.eligible = [k for k in range(el.n) if self.approvals[k] > 0 and el.costs[k] > 0]

    def _price(self, side: _Side, project: int) -> Fraction | None:
        """Smallest amount q per supporter such that the supporters, each paying min(money, q), cover the
        project's cost on this side; None if their money does not reach it."""
        weight = side.alive[project]
        if weight == 0:
            return None
        money, den, cost = side.money, side.den, self.el.costs[project]
        cost_d = cost * den
        sup = self.sup[project]
        if cost_d <= weight * min(filter(None, map(money.__getitem__, sup))):
            return Fraction(cost, weight)  # everybody pays cost / supporters in full
        w = self.weights
        paid, rest = 0, weight
        for g in sorted(filter(money.__getitem__, sup), key=money.__getitem__):
            if cost_d - paid <= rest * money[g]:
                return Fraction(cost_d - paid, rest * den)
            paid += w[g] * money[g]
            rest -= w[g]
        return None

    def run(self, b_low: Fraction, b_high: Fraction) -> list[int]:
        """The MES outcome (funded projects in order) for every per-voter budget in [b_low, b_high].

        Both ends are run side by side: ``low`` holds a lower bound and ``high`` an upper bound of every
        voter's money at any budget in the interval. A project's price is non-increasing in everybody's
        money, so the price on ``low`` bounds it from above and the price on ``high`` from below. A round
        is decided for the whole interval when one project's upper price beats every other project's
        lower price (ties by id); otherwise ``_Fail`` is raised. When both ends are equal this is exactly
        MES and never fails.
        """
        el = self.el
        point = b_low == b_high
        low = _Side(b_low, len(self.weights), self.approvals)
        high = low if point else _Side(b_high, len(self.weights), self.approvals)
        bound = {k: Fraction(1, self.approvals[k]) for k in self.eligible}  # r >= 1/supporters
        cands = set(self.eligible)
        chosen: list[int] = []
        rank, costs = el.rank, el.costs
        while cands:
            best: tuple[Fraction, int, int] | None = None  # (upper price r, rank, project)
            lower: dict[int, Fraction] = {}
            for k in sorted(cands, key=lambda k: (bound[k], rank[k])):
                if best is not None and (bound[k], rank[k]) > best[:2]:
                    break
                q = self._price(high, k)
                if q is None:  # out of the race at every budget of the interval, for good
                    cands.discard(k)
                    continue
                r_lo = q / costs[k]
                bound[k] = max(bound[k], r_lo)
                lower[k] = r_lo
                if best is not None and (r_lo, rank[k]) > best[:2]:
                    continue
                if point:
                    r_hi = r_lo
                else:
                    q_hi = self._price(low, k)
                    if q_hi is None:
                        raise _Fail  # in the race at some budgets of the interval, not at others
                    r_hi = q_hi / costs[k]
                if best is None or (r_hi, rank[k]) < best[:2]:
                    best = (r_hi, rank[k], k)
            if best is None:
                break
            r_hi, _, s = best
            if not point and any((r, rank[k]) <= best[:2] for k, r in lower.items() if k != s):
                raise _Fail
            self._pay(low, s, r_hi * costs[s])
            if not point:
                self._pay(high, s, lower[s] * costs[s])
            cands.discard(s)
            chosen.append(s)
        return chosen

    def _pay(self, side: _Side, project: int, q: Fraction) -> None:
        """Every supporter of ``project`` pays min(money, q)."""
        money = side.money
        den = math.lcm(side.den, q.denominator)
        if den != side.den:
            factor = den // side.den
            money[:] = [m * factor for m in money]
            side.den = den
        amount = q.numerator * (den // q.denominator)
        groups, alive, weights = self.el.groups, side.alive, self.weights
        for g in self.sup[project]:
            m = money[g]
            if m:
                if m > amount:
                    money[g] = m - amount
                else:
                    money[g] = 0
                    for k in groups[g][0]:
                        alive[k] -= weights[g]

    def mes(self) -> list[int]:
        if self.el.voters == 0:
            return []
        b = Fraction(self.el.budget, self.el.voters)
        return self.run(b, b)

    def add1(self) -> list[int]:
        """pabutools' ``voter_budget_increment=1``: raise the per-voter budget one currency unit at a time.

        Steps of ``width`` units are tried as one interval run; when that fails the width shrinks (down to
        single budgets), when it succeeds it doubles, so budgets where nothing changes are crossed fast.
        """
        el = self.el
        if el.voters == 0:
            return []
        base = Fraction(el.budget, el.voters)
        unit = el.scale  # one currency unit, in integer money
        eligible = set(self.eligible)
        k, width, runs, cooldown, backoff = 0, 1, 0, 0, 0
        previous: list[int] | None = None
        while True:
            runs += 1
            if runs > MAX_MES_RUNS:
                raise TallyError(f"mes-add1 did not finish within {MAX_MES_RUNS} runs of MES")
            span = width if cooldown == 0 else 0
            try:
                chosen = self.run(base + k * unit, base + (k + span) * unit)
            except _Fail:
                width //= 2
                if width == 0:
                    backoff = min(64, max(1, 2 * backoff))
                    cooldown, width = backoff, 1
                continue
            spent = sum(el.costs[p] for p in chosen)
            if spent > el.budget:
                if previous is None:  # pragma: no cover - the first run never overspends
                    raise TallyError("MES overspent at the initial budget")
                return previous
            left = el.budget - spent
            if not any(el.costs[p] <= left for p in eligible.difference(chosen)):
                return chosen
            previous = chosen
            k += span + 1
            if span:
                width, backoff = width * 2, 0
            else:
                cooldown -= 1


# --- Method of Equal Shares, cumulative ballots -------------------------------------------------------------


def _mes_points(el: _Election) -> list[int]:
    """MES with utilities = points (exact Fractions; every voter of a group has the same money)."""
    if el.voters == 0:
        return []
    weights = [w for _, w in el.groups]
    sup: list[list[tuple[int, int]]] = [[] for _ in range(el.n)]  # (group, points)
    for g, (key, _w) in enumerate(el.groups):
        for k, pts in key:
            if pts > 0:
                sup[k].append((g, pts))
    total = [sum(weights[g] * u for g, u in s) for s in sup]
    chosen = sorted((k for k in range(el.n) if total[k] > 0 and el.costs[k] == 0), key=el.rank.__getitem__)
    cands = {k for k in range(el.n) if total[k] > 0 and el.costs[k] > 0}
    money = [Fraction(el.budget, el.voters)] * len(weights)
    bound = {k: Fraction(el.costs[k], total[k]) for k in cands}

    def price(k: int) -> Fraction | None:
        cost = el.costs[k]
        paid, rest = Fraction(0), total[k]
        for g, u in sorted(sup[k], key=lambda gu: money[gu[0]] / gu[1]):
            r = (cost - paid) / rest
            if r * u <= money[g]:
                return r
            paid += weights[g] * money[g]
            rest -= weights[g] * u
        return None

    while cands:
        best: tuple[Fraction, int, int] | None = None
        for k in sorted(cands, key=lambda k: (bound[k], el.rank[k])):
            if best is not None and (bound[k], el.rank[k]) > best[:2]:
                break
            r = price(k)
            if r is None:
                cands.discard(k)
                continue
            bound[k] = r
            if best is None or (r, el.rank[k]) < best[:2]:
                best = (r, el.rank[k], k)
        if best is None:
            break
        r, _, s = best
        for g, u in sup[s]:
            money[g] -= min(money[g], r * u)
        cands.discard(s)
        chosen.append(s)
    return chosen


# --- sequential Phragmen ------------------------------------------------------------------------------------


def _phragmen(el: _Election) -> list[int]:
    """Loads are exact; a group's load is the load of the last round it paid in (index -1: load 0)."""
    weights = [w for _, w in el.groups]
    sup: list[list[int]] = [[] for _ in range(el.n)]
    for g, (key, _w) in enumerate(el.groups):
        for k in key:
            sup[k].append(g)
    approvals = [sum(weights[g] for g in s) for s in sup]
    last = [-1] * len(weights)
    loads: list[Fraction] = []
    load_sum = [Fraction(0)] * el.n  # sum over supporters (with weights) of their loads
    remaining = [k for k in range(el.n) if el.costs[k] <= el.budget]
    spent = 0
    chosen: list[int] = []
    while remaining:
        best: Fraction | None = None
        tied: list[int] = []
        for k in remaining:
            new = (load_sum[k] + el.costs[k]) / approvals[k] if approvals[k] else None
            if not tied or (new is not None and (best is None or new < best)):
                best, tied = new, [k]
            elif new == best:
                tied.append(k)
        if any(spent + el.costs[k] > el.budget for k in tied):
            break
        s = min(tied, key=el.rank.__getitem__)
        new_load = best if best is not None else Fraction(0)
        moved: dict[tuple[int, int], int] = {}
        for g in sup[s]:
            for k in el.groups[g][0]:
                moved[(k, last[g])] = moved.get((k, last[g]), 0) + weights[g]
            last[g] = len(loads)
        for (k, t), w in moved.items():
            load_sum[k] += w * (new_load - (loads[t] if t >= 0 else 0))
        loads.append(new_load)
        remaining.remove(s)
        spent += el.costs[s]
        chosen.append(s)
    return chosen


# --- entry point --------------------------------------------------------------------------------------------


def tally(
    rule: str,
    projects: Sequence[tuple[object, object]],
    budget: object,
    votes: Iterable[object],
    vote_type: str = "approval",
) -> Outcome:
    """Run ``rule`` on an election; raises TallyError for malformed input or a rule that does not apply."""
    vote_type = VOTE_TYPE_ALIASES.get(vote_type, vote_type)
    if rule not in RULE_VOTE_TYPES:
        raise TallyError(f"unknown rule {rule!r}; choose one of {', '.join(RULE_VOTE_TYPES)}")
    if vote_type not in RULE_VOTE_TYPES[rule]:
        raise TallyError(f"rule {rule} does not apply to {vote_type} ballots")
    el = _Election(projects, budget, votes, vote_type)
    if rule == "greedy":
        chosen = _greedy_fill(el, [])
    elif rule == "phragmen":
        chosen = _phragmen(el)
    elif vote_type == "cumulative":
        chosen = _mes_points(el)
    elif rule == "mes":
        chosen = _ApprovalMES(el).mes()
    else:
        chosen = _ApprovalMES(el).add1()
        if rule == "mes-add1-greedy":
            chosen = _greedy_fill(el, chosen)
    return el.outcome(rule, chosen)
