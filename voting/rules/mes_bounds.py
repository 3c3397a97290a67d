"""How far the per-voter budget b can grow before a run of MES could decide anything differently.

Used by the add1 completion (:mod:`.mes`): pabutools raises every voter's budget by one currency unit at a
time and reruns MES; the outcome only changes at a few budgets, so instead of rerunning at every unit we
compute, during one run at b0, a lower bound ``delta`` such that every decision of the run is the same for
every b in [b0, b0 + delta), and jump there.

While the decisions stay the same, every budget left and every round price is an affine function of b (a
voter's budget is b minus the prices paid in full, and a price is (cost - money of the supporters who pay
all they have) / utility of the others). The decisions of a round funding s at price r(b) are:

1. each supporter of s stays on its side: paying in full (budget >= r u) or paying all it has (<= r u);
2. every other project p in the race keeps losing to s: H_p(b) = sum_i min(b_i(b), r(b) u_ip) - cost_p
   stays < 0 (<= 0 when p loses the tie on its id; then its supporters' money must also stay above its
   cost). H_p is concave in b (a sum of minima of affine functions), so the tangent at b0 bounds where it
   can reach 0;
3. a project out of the race (its supporters' money below its cost) stays out: an affine condition.

Every bound is computed on floats with the run's proven error bounds, conservatively, and exactly when the
float margin is too small.
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from .numeric import EPS, INF, fdown
from .numeric import dot as _dot

if TYPE_CHECKING:
    from .mes_engine import MESRun


def _root(gap: float, rate: float) -> float:
    """Float bound: a positive gap shrinking at most at ``rate`` per unit of b cannot close before."""
    if rate <= 0:
        return INF
    return max(0.0, gap / rate * (1 - 1e-12))


def _root_exact(gap: Fraction, rate: Fraction) -> float:
    if gap < 0:
        raise AssertionError("MES bounds: a decision of the run does not hold")
    if rate <= 0:
        return INF
    return fdown(gap / rate)


def _update(run: MESRun, delta: float) -> None:
    if delta < run.delta:
        run.delta = delta
    if run.delta <= run.min_jump:
        run.give_up_bounds()


def bound_out_of_race(run: MESRun, p: int, total: float) -> None:
    """p is out of the race (its supporters' money ``total`` < cost): it must stay out."""
    d = run.d
    s = d.sup[p]
    c = d.cf[p]
    m = s.size
    ws = d.wsup[p]
    sf = run.sf[s]
    slope = float((ws * sf).sum())
    err = d.N[p] * run.E + 4 * EPS * (m + 2) * (total + c)
    err_s = d.N[p] * run.Es + 4 * EPS * (m + 2) * float((ws * np.abs(sf)).sum())
    if total + err < c:
        _update(run, _root(c - total - err, slope + err_s))
    else:
        val, val_s = run.sums(s)
        _update(run, _root_exact(d.el.costs[p] - val, val_s))


def bound_round(
    run: MESRun, s: int, r: Fraction, poor: np.ndarray, slope_sum: Fraction, weight: int, cand: set[int]
) -> None:
    """All bounds of the round that funds s at price r (poor: supporters paying all they have)."""
    d = run.d
    rslope = -slope_sum / weight
    if rslope < 0:  # the price must stay positive
        _update(run, fdown(r / -rslope))
    _bound_supporters(run, s, r, rslope, poor)
    for p in sorted(cand, key=lambda q: -d.N[q]):
        if not run.track:
            return
        if p == s:
            continue
        cheap = 0.0
        base = r * d.U[p]  # p's price with all supporters paying in full: it loses while r(b) U_p < cost
        if base < d.el.costs[p]:
            cheap = _root_exact(d.el.costs[p] - base, rslope * d.U[p])
            if cheap >= run.delta:
                continue
        _update(run, max(cheap, _bound_other(run, p, s, r, rslope)))


def _bound_supporters(run: MESRun, s: int, r: Fraction, rslope: Fraction, poor: np.ndarray) -> None:
    d = run.d
    sp, u, ui = d.sup[s], d.utf[s], d.ut[s]
    b, sf = run.bf[sp], run.sf[sp]
    rf, rsf = float(r), float(rslope)
    live = ~run.dep[sp]
    sign = np.where(poor, -1.0, 1.0)
    h = sign * (b - rf * u)  # must stay >= 0
    hs = sign * (sf - rsf * u)
    tol = run.E + 8 * EPS * (b + abs(rf) * u)
    tol_s = run.Es + 8 * EPS * (np.abs(sf) + abs(rsf) * u)
    safe = live & (h > tol)
    fall = safe & (hs - tol_s < 0)
    if fall.any():
        _update(run, float(((h - tol)[fall] / (tol_s - hs)[fall]).min()) * (1 - 1e-12))
    for j in np.flatnonzero(live & ~safe).tolist():
        if not run.track:
            return
        val, val_s = run.budget(int(sp[j]))
        g, gs = val - r * int(ui[j]), val_s - rslope * int(ui[j])
        if poor[j]:
            g, gs = -g, -gs
        _update(run, _root_exact(g, -gs))


def _bound_other(run: MESRun, p: int, s: int, r: Fraction, rslope: Fraction) -> float:
    d = run.d
    sq, uq = d.sup[p], d.utf[p]
    x, sx = run.bf[sq], run.sf[sq]
    rf, rsf = float(r), float(rslope)
    y, sy = rf * uq, rsf * uq
    wq = d.wsup[p]
    low = np.minimum(x, y)
    paid = float((wq * low).sum())
    h = paid - d.cf[p]
    tol = run.E + 8 * EPS * (x + y)
    below, above = x < y - tol, x > y + tol
    slope = np.where(below, sx, np.where(above, sy, np.maximum(sx, sy)))
    hs = float((wq * slope).sum())
    m = sq.size
    err = d.N[p] * run.E + 8 * EPS * (m + 2) * (paid + d.cf[p])
    err_s = d.N[p] * run.Es + 8 * EPS * (m + 2) * float((wq * (np.abs(sx) + np.abs(sy))).sum())
    if h + err < 0:
        return _root(-(h + err), hs + err_s)
    return _bound_other_exact(run, p, s, r, rslope, below, above)


def _bound_other_exact(
    run: MESRun, p: int, s: int, r: Fraction, rslope: Fraction, below: np.ndarray, above: np.ndarray
) -> float:
    d = run.d
    sq, ui = d.sup[p], d.ut[p]
    below, above = below.copy(), above.copy()
    equal_slope = Fraction(0)
    for j in np.flatnonzero(~below & ~above).tolist():
        val, val_s = run.budget(int(sq[j]))
        price = r * int(ui[j])
        if val < price:
            below[j] = True
        elif val > price:
            above[j] = True
        else:
            equal_slope += int(d.w[sq[j]]) * min(val_s, rslope * int(ui[j]))
    val, val_s = run.sums(sq[below])
    rest = ~below
    h = val + r * _dot(d.w[sq[rest]], ui[rest]) - d.el.costs[p]
    hs = val_s + rslope * _dot(d.w[sq[above]], ui[above]) + equal_slope
    if h < 0:
        return _root_exact(-h, hs)
    rank = d.el.lex_rank
    if h > 0 or rank[p] < rank[s]:
        raise AssertionError("MES bounds: a losing project would win")
    # p ties with s and loses on its id: it keeps losing while H_p does not grow and p stays priced at r
    if hs < 0:
        return INF
    if hs > 0:
        return 0.0
    money, money_s = run.sums(sq)
    if money > d.el.costs[p]:
        return _root_exact(money - d.el.costs[p], -money_s)
    return 0.0
