"""The price of one project in a round of MES: fast in floats, exactly when needed.

The price r(p) is the smallest price per unit of utility such that the supporters, each paying
min(budget left, r * utility), cover the cost. Supporters whose budget is below r * utility ("poor") pay
all they have; with P the money of the poor and W the utility of the others, r = (cost - P) / W. It is found
by the usual fixed point: start with nobody poor, mark poor whoever cannot pay, recompute, repeat.

For approval ballots the utility is the cost of the project (the same for every supporter), so the
computation is in terms of the price per supporter, compared with scalar thresholds.
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from .numeric import EPS, Eval, dot

if TYPE_CHECKING:
    from .mes_engine import MESRun


def float_price(run: MESRun, p: int) -> Eval | None:
    """Float price of p, raising lb[p] to a proven lower bound; None if p is certainly out of the race
    (its supporters' money is below its cost)."""
    d = run.d
    s = d.sup[p]
    c = d.cf[p]
    m = s.size
    b = run.bf[s]
    ws = d.wsup[p]
    unit = d.unit[p]
    wb = b if unit else ws * b
    tot = float(wb.sum())
    tol = d.N[p] * run.E + 4 * EPS * (m + 2) * (tot + c)
    if tot < c + tol and (tot < c - tol or run.sums(s)[0] < d.el.costs[p]):
        run.out_of_race(p, tot)
        return None
    if d.approval:
        price, poor = _approval_fixed_point(b, wb, ws, unit, c, d.N[p])
        if not poor.any() and float(b.min()) > (price * (1 + 4 * EPS) + run.E) / (1 - 4 * EPS):
            return Eval(price / c, poor)  # everybody pays c / N in full: r = 1 / N, lb[p] already says so
        f = float(np.minimum(b, price).sum() if unit else (np.minimum(b, price) * ws).sum())
        threshold = (price * (1 + 4 * EPS) + run.E) / (1 - 4 * EPS)  # above: certainly pays in full
        rich = b > threshold
        certain = float(np.count_nonzero(rich) if unit else ws[rich].sum())
        r, per_utility = price / c, c
    else:
        u, wu = d.utf[p], d.wuf[p]
        ratio = b / u
        r, poor = _points_fixed_point(ratio, wb, wu, c, d.Uf[p])
        f = float(np.minimum(wb, r * wu).sum())
        ru = r * u
        rich = (b - ru) > run.E + 4 * EPS * (b + ru)
        certain = float(wu[rich].sum())
        price, per_utility = r, 1.0
    # Every supporter paying in full at r also pays in full just below, so the money collected falls at
    # least at rate `certain` below r: r* >= r - (F(r) - cost) / certain, with F's float error `err`.
    certain *= 1 - 4 * EPS * (m + 2)
    if certain > 0:
        err = d.N[p] * run.E + 8 * EPS * (m + 2) * (f + c + tot)
        low = (price - max(0.0, f + err - c) / certain) / per_utility
        low = low * (1 - 16 * EPS) if low > 0 else 0.0
        if low > run.lb[p]:
            run.lb[p] = low
    return Eval(r, poor)


def _approval_fixed_point(
    b: np.ndarray, wb: np.ndarray, ws: np.ndarray, unit: bool, cost: float, voters: int
) -> tuple[float, np.ndarray]:
    price = cost / voters
    poor = b < price
    k = int(np.count_nonzero(poor))
    while k:
        rich = voters - (k if unit else float(ws[poor].sum()))
        if rich <= 0:
            return float(b.max()), poor
        price = (cost - float(wb[poor].sum())) / rich
        again = b < price
        k2 = int(np.count_nonzero(again))
        if k2 <= k:
            break
        poor, k = again, k2
    return price, poor


def _points_fixed_point(
    ratio: np.ndarray, wb: np.ndarray, wu: np.ndarray, cost: float, utility: float
) -> tuple[float, np.ndarray]:
    r = cost / utility
    poor = ratio < r
    k = int(np.count_nonzero(poor))
    while k:
        rest = utility - float(wu[poor].sum())
        if rest <= 0:
            return float(ratio.max()), poor
        r = (cost - float(wb[poor].sum())) / rest
        again = ratio < r
        k2 = int(np.count_nonzero(again))
        if k2 <= k:
            break
        poor, k = again, k2
    return r, poor


def exact_price(run: MESRun, p: int, guess: np.ndarray) -> tuple[Fraction, np.ndarray, Fraction, int]:
    """Exact price r of p; which supporters pay all they have (mask over sup[p]); the sum of the slopes
    (in b) of their budgets; the utility of the others. Starts from the float guess and corrects it; if
    that does not settle, falls back to the monotone fixed point (which always converges)."""
    d = run.d
    s, u = d.sup[p], d.ut[p]
    cost = d.el.costs[p]
    dep = run.dep[s]
    poor = guess | dep
    b = run.bf[s]
    ws = d.w[s]
    monotone = False
    for attempt in range(1_000_000):
        if attempt == 12 and not monotone:
            monotone, poor = True, dep.copy()
        val, slope = run.sums(s[poor])
        if d.approval:
            weight = int(ws[~poor].sum()) * cost
        else:
            weight = dot(ws[~poor], u[~poor])
        if weight == 0:  # everybody would pay all they have: the richest pays its budget exactly
            live = np.flatnonzero(~dep)
            top = live[np.argmax(b[live] / d.utf[p][live])]
            poor = poor.copy()
            poor[top] = False
            continue
        r = (cost - val) / weight
        if d.approval:
            pf = float(r * cost)
            tol = run.E + 8 * EPS * (run.bmax + pf)
            to_poor = (b < pf - tol) & ~poor
            to_rich = (b > pf + tol) & poor & ~dep
            unsure = (b >= pf - tol) & (b <= pf + tol) & ~dep
        else:
            ru = float(r) * d.utf[p]
            gap = b - ru
            tol = run.E + 8 * EPS * (b + ru)
            to_poor = (gap < -tol) & ~poor
            to_rich = (gap > tol) & poor & ~dep
            unsure = (np.abs(gap) <= tol) & ~dep
        for j in np.flatnonzero(unsure).tolist():
            left = run.budget(int(s[j]))[0] - r * int(u[j])
            if left < 0 and not poor[j]:
                to_poor[j] = True
            elif left > 0 and poor[j]:
                to_rich[j] = True
        if monotone:
            to_rich[:] = False
        if not to_poor.any() and not to_rich.any():
            return r, poor, slope, weight
        poor = (poor | to_poor) & ~to_rich
    raise AssertionError("MES price did not converge")
