"""The Method of Equal Shares, computed exactly but mostly in floats.

Semantics (those of pabutools 1.2.3 ``method_of_equal_shares``): every voter starts with the same budget b.
In each round, for every project p still in the race, r(p) is the smallest price per unit of utility at
which its supporters, each paying min(budget left, r * utility), cover its cost. A project stays in the race
while its supporters' budgets left add up to at least its cost. The project with the smallest r is funded
(ties: smaller id as a string), its supporters pay, and the rule ends when no project is left in the race.
Utilities are the project's cost for approval ballots (``Cost_Sat``) and the points for point ballots
(``Additive_Cardinal_Sat``). A project without supporters is never funded; with point ballots a supported
project of cost 0 is funded first.

How it stays exact:

* budgets are numpy floats with a proven uniform error bound ``E``. A decision (which project is cheaper,
  can a project still be paid, does a voter pay in full) is taken on floats only when the float margin
  exceeds the error bound; otherwise the exact value is computed, so rounding can never change an outcome.
* exact values need no Fraction per voter: a voter has b minus the prices r_t * u paid in full so far, or 0
  after paying all they had, so a sum of budgets over any set of voters is
  b * (their number) - sum_t r_t * (their utility for round t's project). The r_t are kept as integers over
  a common denominator, so that sum is integer arithmetic and one division.
* projects are evaluated lazily as in pabutools: r(p) never decreases, so a project whose last lower bound
  exceeds the round's best price cannot win the round.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .mes_bounds import bound_out_of_race, bound_round
from .mes_price import exact_price, float_price
from .numeric import EPS, INF, Eval, dot, fdown, fup
from .profile import POINT_TYPES, Election, group_ballots


class MESData:
    """Ballots prepared for MES: identical ballots merged; supporters and utilities per project."""

    def __init__(self, el: Election) -> None:
        self.el = el
        grouped, weight = group_ballots(el.ballots)
        self.n = weight.size
        self.w = weight
        self.wf = weight.astype(np.float64)
        self.approval = el.vote_type not in POINT_TYPES
        voter = grouped.voter_of_entry()
        items = grouped.items.astype(np.int64)
        if max(el.costs, default=0) >= 2**62:
            raise ValueError("amounts too large")
        if self.approval:
            util = np.asarray(el.costs, dtype=np.int64)[items] if items.size else np.zeros(0, np.int64)
        else:
            assert grouped.points is not None
            util = grouped.points.astype(np.int64)
        keep = util > 0
        voter, items, util = voter[keep], items[keep], util[keep]
        order = np.lexsort((voter, items))
        voter, items, util = voter[order], items[order], util[order]
        cut = np.searchsorted(items, np.arange(el.projects + 1))
        self.sup = [voter[cut[p] : cut[p + 1]] for p in range(el.projects)]
        self.ut = [util[cut[p] : cut[p + 1]] for p in range(el.projects)]
        self.utf = [u.astype(np.float64) for u in self.ut]
        self.wsup = [self.wf[s] for s in self.sup]
        self.wuf = [ws * uf for ws, uf in zip(self.wsup, self.utf, strict=True)]
        self.U = [dot(self.w[s], u) for s, u in zip(self.sup, self.ut, strict=True)]  # total utility
        self.N = [int(self.w[s].sum()) for s in self.sup]
        self.unit = [bool(n == s.size) for n, s in zip(self.N, self.sup, strict=True)]  # all weights 1
        self.Uf = [float(u) for u in self.U]
        self.cf = [float(c) for c in el.costs]
        self.int64_ok = int(self.w.sum()) * int(util.max(initial=1)) < 2**62
        self.eligible = [p for p in range(el.projects) if self.U[p] > 0 and el.costs[p] > 0]
        self.free = sorted(
            (p for p in range(el.projects) if self.U[p] > 0 and el.costs[p] == 0),
            key=lambda p: int(el.lex_rank[p]),
        )
        self.voters = el.ballots.voters
        self.lb0 = np.full(el.projects, INF)  # r >= cost / total utility: every supporter paying in full
        for p in self.eligible:
            self.lb0[p] = fdown(Fraction(el.costs[p], self.U[p]))


@dataclass
class Round:
    project: int
    r: Fraction  # price per unit of utility
    slope: Fraction  # dr/db (bounds tracking only)
    payers: np.ndarray  # groups that paid r * utility in full (sorted)
    wu: np.ndarray  # weight * utility of each payer
    paid: int  # voters who paid in full
    exhausted: int  # voters who paid all they had left


class MESRun:
    """One run of MES with initial budget ``b`` per voter (integer money units of the Election).

    With ``bounds=True`` budgets are also tracked as affine functions of b, and after ``run()``
    ``delta`` is a lower bound of how much b can grow (from this b) with every decision of the run, hence
    its outcome, unchanged (``INF``: forever; 0: none). Tracking stops (``delta`` = 0) once ``delta`` falls
    below ``min_jump``.
    """

    def __init__(self, data: MESData, b: Fraction, *, bounds: bool = False, min_jump: float = 0.0) -> None:
        d = self.d = data
        self.b = Fraction(b)
        self.bmax = float(self.b)
        self.bf = np.full(d.n, self.bmax)
        self.dep = np.zeros(d.n, dtype=bool)
        self.E = 2 * EPS * self.bmax
        self.track = bounds
        self.delta = INF if bounds else 0.0
        self.min_jump = min_jump
        self.sf = np.ones(d.n) if bounds else np.zeros(0)
        self.Es = 0.0
        self.rounds: list[Round] = []
        self.den, self.rnum = 1, []  # round prices r_t = rnum[t] / den
        self.sden, self.snum = 1, []  # their slopes = snum[t] / sden
        self.bits = np.zeros((1, d.n), dtype="<u8") if d.approval else None  # bit t: paid in full in round t
        self.mask = np.zeros(d.n, dtype=bool)
        self.lb = d.lb0.copy()  # proven lower bounds of the prices
        self.selected: list[int] = list(d.free)
        self.exact_evaluations = 0
        self.removed: list[int] = []

    # ----- exact sums -------------------------------------------------------------------------------
    def round_weights(self, idx: np.ndarray) -> list[int]:
        """Per round t: sum over the groups idx that paid in full in round t of weight * utility."""
        T = len(self.rounds)
        if self.bits is not None:
            words = np.ascontiguousarray(self.bits[:, idx].T)
            raw = np.unpackbits(words.view(np.uint8), axis=1, bitorder="little")[:, :T]
            counts = self.d.w[idx] @ raw.astype(np.int64)
            return [
                int(k) * self.d.el.costs[rd.project]
                for k, rd in zip(counts.tolist(), self.rounds, strict=True)
            ]
        mask = self.mask
        mask[idx] = True
        out = [int(rd.wu[mask[rd.payers]].sum()) for rd in self.rounds]
        mask[idx] = False
        return out

    def sums(self, idx: np.ndarray) -> tuple[Fraction, Fraction]:
        """Exact sum of the budgets (and of their slopes in b) of the groups idx, times their weights."""
        idx = idx[~self.dep[idx]]
        if idx.size == 0:
            return Fraction(0), Fraction(0)
        w0 = int(self.d.w[idx].sum())
        if not self.rounds:
            return self.b * w0, Fraction(w0)
        k = self.round_weights(idx)
        x = sum(r * kt for r, kt in zip(self.rnum, k, strict=True) if kt)
        val = Fraction(
            self.b.numerator * w0 * self.den - x * self.b.denominator, self.b.denominator * self.den
        )
        if not self.track:
            return val, Fraction(w0)
        y = sum(s * kt for s, kt in zip(self.snum, k, strict=True) if kt)
        return val, Fraction(w0 * self.sden - y, self.sden)

    def budget(self, i: int) -> tuple[Fraction, Fraction]:
        """Exact budget left (and its slope in b) of one member of group i."""
        val, slope = self.sums(np.array([i], dtype=np.int64))
        w = int(self.d.w[i])
        return val / w, slope / w

    # ----- evaluation of a project (see mes_price) ------------------------------------------------------
    def float_eval(self, p: int) -> Eval | None:
        """Float price of p with a proven lower bound stored in lb[p]; None if p is out of the race."""
        return float_price(self, p)

    def exact_eval(self, p: int, guess: np.ndarray) -> tuple[Fraction, np.ndarray, Fraction, int]:
        """Exact price r of p, which supporters pay all they have (mask over sup[p]), the slope sum of
        their budgets and the utility weight of the others."""
        self.exact_evaluations += 1
        return exact_price(self, p, guess)

    def out_of_race(self, p: int, total: float) -> None:
        self.removed.append(p)
        if self.track:
            bound_out_of_race(self, p, total)

    def loses(self, p: int, r: Fraction, s: int) -> bool:
        """Is it certain that p does not beat s (price r) this round?"""
        lb = self.lb[p]
        return bool(lb > r or (lb == r and self.d.el.lex_rank[p] > self.d.el.lex_rank[s]))

    # ----- one round --------------------------------------------------------------------------------
    def choose(self, cand: set[int]) -> tuple[int, Fraction, np.ndarray, Fraction, int] | None:
        """The project this round funds, with its exact price (see exact_eval); None if none is left.
        Projects found out of the race are removed from ``cand``."""
        rank = self.d.el.lex_rank
        pool = np.fromiter(cand, dtype=np.int64, count=len(cand))
        order = pool[np.lexsort((rank[pool], self.lb[pool]))]
        evaluated: dict[int, Eval] = {}
        best = INF
        for p in order.tolist():
            if self.lb[p] > best * (1 + 1e-9):
                break
            ev = self.float_eval(p)
            if ev is None:
                cand.discard(p)
                continue
            evaluated[p] = ev
            best = min(best, ev.r)
        if not evaluated:
            return None
        s = min(evaluated, key=lambda q: (evaluated[q].r, int(rank[q])))
        r, poor, slope, weight = self.exact_eval(s, evaluated[s].poor)
        pool = np.fromiter(cand, dtype=np.int64, count=len(cand))
        pool = pool[self.lb[pool] <= fup(r)]  # the others certainly cost more
        for p in pool[np.argsort(self.lb[pool], kind="stable")].tolist():
            if p == s or p not in cand or self.loses(p, r, s):
                continue
            if p not in evaluated:
                ev = self.float_eval(p)
                if ev is None:
                    cand.discard(p)
                    continue
                evaluated[p] = ev
                if self.loses(p, r, s):
                    continue
            rp, poor_p, slope_p, weight_p = self.exact_eval(p, evaluated[p].poor)
            self.lb[p] = max(self.lb[p], fdown(rp))
            if (rp, int(rank[p])) < (r, int(rank[s])):
                s, r, poor, slope, weight = p, rp, poor_p, slope_p, weight_p
        return s, r, poor, slope, weight

    def apply(self, p: int, r: Fraction, poor: np.ndarray, slope_sum: Fraction, weight: int) -> None:
        """Fund p at price r: supporters marked poor pay all they have, the others r * utility."""
        d = self.d
        s, u = d.sup[p], d.utf[p]
        live_poor = s[poor & ~self.dep[s]]
        payers = s[~poor]
        rf = float(r)
        if d.approval:
            self.bf[payers] = np.maximum(self.bf[payers] - float(r * d.el.costs[p]), 0.0)
        else:
            self.bf[payers] = np.maximum(self.bf[payers] - rf * u[~poor], 0.0)
        self.bf[live_poor] = 0.0
        self.dep[live_poor] = True
        self.E += 4 * EPS * self.bmax
        rslope = -slope_sum / weight if self.track else Fraction(0)
        if self.track:
            sf = float(rslope)
            self.sf[payers] -= sf * u[~poor]
            self.sf[live_poor] = 0.0
            self.Es += 4 * EPS * (float(np.abs(self.sf).max(initial=0.0)) + abs(sf) * float(u.max()))
        t = len(self.rounds)
        if self.bits is not None:
            if t // 64 >= self.bits.shape[0]:
                self.bits = np.concatenate([self.bits, np.zeros_like(self.bits[:1])], axis=0)
            word = self.bits[t // 64]
            word[payers] |= np.uint64(1 << (t % 64))
        if d.approval:
            wu = d.ut[p][:0]  # not needed: round_weights uses the bits
        elif d.int64_ok:
            wu = self.d.w[payers] * d.ut[p][~poor]
        else:
            wu = self.d.w[payers].astype(object) * d.ut[p][~poor].astype(object)
        den = math.lcm(self.den, r.denominator)
        self.rnum = [x * (den // self.den) for x in self.rnum] + [r.numerator * (den // r.denominator)]
        self.den = den
        if self.track:
            sden = math.lcm(self.sden, rslope.denominator)
            self.snum = [x * (sden // self.sden) for x in self.snum] + [
                rslope.numerator * (sden // rslope.denominator)
            ]
            self.sden = sden
        self.rounds.append(
            Round(p, r, rslope, payers, wu, int(self.d.w[payers].sum()), int(self.d.w[live_poor].sum()))
        )

    def run(self) -> list[int]:
        """Run MES to the end; the funded projects (indices) in funding order."""
        cand = set(self.d.eligible)
        while cand:
            choice = self.choose(cand)
            if choice is None:
                break
            p, r, poor, slope, weight = choice
            if self.track:
                bound_round(self, p, r, poor, slope, weight, cand)
            self.apply(p, r, poor, slope, weight)
            cand.discard(p)
            self.selected.append(p)
        return self.selected

    def give_up_bounds(self) -> None:
        self.track = False
        self.delta = 0.0
