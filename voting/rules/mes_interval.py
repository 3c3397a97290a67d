"""One MES outcome for a whole range of per-voter budgets, or None.

MES is monotone in the budgets: a voter's price share can only fall when voters have more money, and a
voter's budget left, max(0, budget - price * utility), grows with its budget and falls with the price. So
if every voter's budget lies between the vectors ``lo`` and ``hi`` at the start of a round, for every initial
budget b in [b_lo, b_hi] (given the same projects funded so far), then

* each project's price lies between its price for ``hi`` (a lower bound) and for ``lo`` (an upper bound),
* if the project s with the lowest price for ``hi`` has, for ``lo``, a price still below every other
  project's lower bound (or equal to it and s has the smaller id), s is funded for every b in the range,
* and afterwards every voter's budget lies between max(0, lo - upper price * u) and
  max(0, hi - lower price * u).

Running both ends round by round therefore certifies one outcome for the whole range, or gives up (None)
as soon as a decision differs or is too close to call. Floats carry a proven uniform error bound, exactly
as in :mod:`.mes_engine`; there is no exact arithmetic here, since any doubt means giving up.
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from .mes_price import float_price
from .numeric import EPS, INF, fdown, fup

if TYPE_CHECKING:
    from .mes_engine import MESData


class _End:
    """The ``hi`` end, shaped like an MESRun for :func:`float_price` (lower bounds of the prices)."""

    def __init__(self, data: MESData, b: float) -> None:
        self.d = data
        self.bf = np.full(data.n, b)
        self.bmax = b
        self.E = 2 * EPS * b
        self.lb = data.lb0.copy()
        self.track = False
        self.out: list[int] = []

    def sums(self, idx: np.ndarray) -> tuple[float, float]:
        return INF, INF  # not certainly short of money: the project may be in the race for some b

    def out_of_race(self, p: int, total: float) -> None:
        self.out.append(p)


def interval_outcome(data: MESData, b_lo: Fraction, b_hi: Fraction) -> list[int] | None:
    """The projects MES funds, in order, for every per-voter budget in [b_lo, b_hi]; None if that
    cannot be certified."""
    d = data
    rank = d.el.lex_rank
    hi = _End(d, fup(b_hi))
    lo = np.full(d.n, fdown(b_lo))
    cand = set(d.eligible)
    chosen = list(d.free)
    while cand:
        pool = np.fromiter(cand, dtype=np.int64, count=len(cand))
        evaluated: dict[int, float] = {}
        best = INF
        for p in pool[np.lexsort((rank[pool], hi.lb[pool]))].tolist():
            if hi.lb[p] > best * (1 + 1e-9):
                break
            ev = float_price(hi, p)  # type: ignore[arg-type]
            if ev is None:  # out of the race for every b
                cand.discard(p)
                continue
            evaluated[p] = ev.r
            best = min(best, ev.r)
        if not evaluated:
            return chosen
        s = min(evaluated, key=lambda q: (evaluated[q], int(rank[q])))
        sp, u = d.sup[s], d.utf[s]
        exact = Fraction(d.el.costs[s], d.U[s])  # s's lowest possible price: all supporters pay in full
        if float((lo[sp] - hi.E - fup(exact) * u * (1 + 8 * EPS)).min()) > 0:
            upper: Fraction | float | None = exact  # they all can, for every b: the price is exact
            lower = fdown(exact)
        else:
            upper, lower = _upper_price(d, lo, hi.E, s), hi.lb[s]
        if upper is None:
            return None
        for p in list(cand):
            if p == s or _loses(d, hi.lb[p], upper, p, s):
                continue
            if p in evaluated:
                return None
            if float_price(hi, p) is None:  # type: ignore[arg-type]
                cand.discard(p)
            elif not _loses(d, hi.lb[p], upper, p, s):
                return None
        lo[sp] = np.maximum(lo[sp] - fup(Fraction(upper)) * u, 0.0)
        hi.bf[sp] = np.maximum(hi.bf[sp] - lower * u, 0.0)
        hi.E += 4 * EPS * hi.bmax
        cand.discard(s)
        chosen.append(s)
    return chosen


def _loses(d: MESData, low: float, upper: Fraction | float, p: int, s: int) -> bool:
    """p's price, at least ``low`` and at least cost / total utility, is certainly above s's price (at most
    ``upper``), or equal to it while s wins the tie."""
    later = d.el.lex_rank[p] > d.el.lex_rank[s]
    if low > upper or (low == upper and later):
        return True
    floor = Fraction(d.el.costs[p], d.U[p])
    return floor > upper or (floor == upper and later)


def _upper_price(d: MESData, lo: np.ndarray, E: float, s: int) -> float | None:
    """A proven upper bound of s's price for every b (budgets >= lo - E), or None if s might be out of
    the race for some b or the bound is not found."""
    sp, u, wu, ws = d.sup[s], d.utf[s], d.wuf[s], d.wsup[s]
    c, m = d.cf[s], sp.size
    b = lo[sp]
    wb = ws * b
    total = float(wb.sum())
    if total - d.N[s] * E - 4 * EPS * (m + 2) * (total + c) < c:
        return None
    ratio = b / u
    r = c / d.Uf[s]
    poor = ratio < r
    k = int(np.count_nonzero(poor))
    while k:
        rest = d.Uf[s] - float(wu[poor].sum())
        if rest <= 0:
            r = float(ratio.max())
            break
        r = (c - float(wb[poor].sum())) / rest
        again = ratio < r
        k2 = int(np.count_nonzero(again))
        if k2 <= k:
            break
        poor, k = again, k2
    for slack in (1e-12, 1e-9, 1e-6):
        candidate = r * (1 + slack) + 1e-300
        money = float(np.minimum(wb, candidate * wu).sum())
        if money - d.N[s] * E - 8 * EPS * (m + 2) * (money + c) >= c:  # enough money at this price
            return candidate
    return None
