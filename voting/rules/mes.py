"""Method of Equal Shares rules: ``mes``, ``mes-add1`` and ``mes-add1-greedy``.

References: D. Peters, G. Pierczynski, P. Skowron, "Proportional Participatory Budgeting with Additive
Utilities", NeurIPS 2021; equalshares.net. Semantics are those of pabutools 1.2.3 (see ``mes_engine``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

from .greedy import greedy_fill
from .mes_engine import INF, MESData, MESRun
from .mes_interval import interval_outcome
from .profile import APPROVAL_TYPES, POINT_TYPES, Ballots, Number, prepare
from .result import NO_VOTES, SUPPORTERS_SHORT, ProjectFigures, RuleError, TallyResult

MAX_RUNS = 1_000_000  # add1: give up (RuleError) rather than run forever
MAX_BACKOFF = 64


def mes(
    projects: Sequence[tuple[str, Number]], budget: Number, ballots: Ballots, *, vote_type: str
) -> TallyResult:
    """Method of Equal Shares: each voter gets budget / voters; utilities are the cost (approval ballots,
    pabutools ``Cost_Sat``) or the points (cumulative ballots, ``Additive_Cardinal_Sat``)."""
    if vote_type not in APPROVAL_TYPES + POINT_TYPES:
        raise RuleError(f"mes needs approval or cumulative ballots, not {vote_type}")
    el = prepare(projects, budget, ballots, vote_type)
    data = MESData(el)
    if data.voters == 0:
        return _result("mes", data, None, {})
    b = Fraction(el.budget, data.voters)
    run = MESRun(data, b)
    run.run()
    return _result("mes", data, run, {"voter_budget": el.money(b)})


def mes_add1(
    projects: Sequence[tuple[str, Number]], budget: Number, ballots: Ballots, *, vote_type: str
) -> TallyResult:
    """MES completed by raising every voter's budget one currency unit at a time (pabutools
    ``voter_budget_increment=1``): it stops at the first budget whose outcome costs more than the budget
    (and returns the outcome of the budget before) or leaves no supported project that would still fit (and
    returns that outcome). Budgets at which the outcome provably stays the same are stepped over
    (``mes_bounds``, ``mes_interval``), so budgets in small currency units (forint) take seconds."""
    data = _add1_data(projects, budget, ballots, vote_type, "mes-add1")
    run, details = add1_search(data)
    return _result("mes-add1", data, run, details)


def mes_add1_greedy(
    projects: Sequence[tuple[str, Number]], budget: Number, ballots: Ballots, *, vote_type: str
) -> TallyResult:
    """``mes-add1``, then the money left is filled greedily by votes (pabutools
    ``completion_by_rule_combination`` with ``greedy_utilitarian_welfare``)."""
    data = _add1_data(projects, budget, ballots, vote_type, "mes-add1-greedy")
    run, details = add1_search(data)
    result = _result("mes-add1-greedy", data, run, details)
    chosen = [data.el.ids.index(pid) for pid in result.selected]
    for pid in result.selected:
        result.projects[pid].stage = "mes"
    greedy_fill(data.el, data.el.scores(), chosen, result, stage="greedy")
    return result


def _add1_data(
    projects: Sequence[tuple[str, Number]], budget: Number, ballots: Ballots, vote_type: str, name: str
) -> MESData:
    if vote_type not in APPROVAL_TYPES:
        raise RuleError(f"{name} needs approval ballots, not {vote_type}")
    return MESData(prepare(projects, budget, ballots, vote_type))


def add1_search(data: MESData, max_runs: int = MAX_RUNS) -> tuple[MESRun | None, dict[str, object]]:
    """The outcome pabutools' add1 loop returns, as an MES run, and details (final per-voter budget,
    number of exact MES runs and of range certifications).

    Step k runs MES with budget b_k = budget / voters + k currency units per voter; the loop stops at the
    first k whose outcome costs more than the budget (answer: the outcome of step k - 1) or leaves no
    supported project that would still fit (answer: that outcome). Two ways to skip steps, both proven to
    give the same outcomes as the steps skipped: the jump bound of an exact run (``mes_bounds``), and
    certifying one outcome for a whole range of steps (``mes_interval``), tried on doubling ranges.
    """
    el = data.el
    if data.voters == 0:
        return None, {}
    base, unit = Fraction(el.budget, data.voters), el.scale  # unit: one currency unit, in integer money
    eligible = set(data.eligible)
    runs = checks = 0  # exact MES runs, range certifications

    def at(k: int) -> Fraction:
        return base + k * unit

    def stop(chosen: list[int]) -> str | None:
        spent = sum(el.costs[p] for p in chosen)
        if spent > el.budget:
            return "over"
        if not any(el.costs[p] <= el.budget - spent for p in eligible.difference(chosen)):
            return "full"
        return None

    def finish(k: int, run: MESRun | None) -> tuple[MESRun, dict[str, object]]:
        nonlocal runs
        if run is None:  # same outcome as a run already made: recompute its figures at step k
            run = MESRun(data, at(k))
            run.run()
            runs += 1
        return run, {"voter_budget": el.money(at(k)), "mes_runs": runs, "range_checks": checks}

    k, last, last_k = 0, None, -1  # last exact run and its step
    span, cooldown, pause, backoff, bounds_from = 2, 0, 0, 0, 0
    while True:
        if runs + checks >= max_runs:
            raise RuleError(f"mes-add1 did not finish within {max_runs} runs of MES")
        track = k >= bounds_from
        run = MESRun(data, at(k), bounds=track, min_jump=float(unit))
        chosen = run.run()
        runs += 1
        verdict = stop(chosen)
        if verdict == "over":
            assert k > 0, "the first MES run always fits the budget"
            return finish(k - 1, last if last_k == k - 1 else None)
        if verdict == "full":
            return finish(k, run)
        step = 1
        if track and unit < run.delta < INF:
            step, backoff = max(1, math.ceil(Fraction(run.delta) / unit)), 0
        elif track:  # the bound did not help: compute it less often for a while
            backoff = min(MAX_BACKOFF, max(1, 2 * backoff))
            bounds_from = k + 1 + backoff
        last, last_k, k = run, k, k + step
        if pause:
            pause -= 1
            continue
        while runs + checks < max_runs:  # certify ranges of steps [k, k + span - 1]
            outcome = interval_outcome(data, at(k), at(k + span - 1))
            checks += 1
            if outcome is None:
                if span == 2:  # even two steps fail: try again after a few exact runs
                    cooldown = min(MAX_BACKOFF, max(1, 2 * cooldown))
                    pause = cooldown
                span = max(2, span // 4)
                break
            cooldown = 0
            verdict = stop(outcome)
            if verdict == "over":
                return finish(k - 1, last if last_k == k - 1 else None)
            if verdict == "full":
                return finish(k, None)
            k, span = k + span, 2 * span


def _result(rule: str, data: MESData, run: MESRun | None, details: dict[str, object]) -> TallyResult:
    """TallyResult with MES figures per project."""
    el = data.el
    scores = el.scores()
    result = TallyResult(rule, [], Fraction(0), el.money(el.budget), details=dict(details))
    for k, pid in enumerate(el.ids):
        fig = result.projects[pid] = ProjectFigures(pid, el.money(el.costs[k]), scores[k])
        if data.U[k] == 0:
            fig.reason = NO_VOTES
    if run is None:
        return result
    chosen = run.selected
    for pos, p in enumerate(chosen, start=1):
        result.projects[el.ids[p]].position = pos
    for rd in run.rounds:
        fig = result.projects[el.ids[rd.project]]
        if data.approval:
            fig.rho = rd.r
            fig.price = el.money(rd.r * el.costs[rd.project])
        else:
            fig.rho = el.money(rd.r * el.ballots.points_scale)
        fig.payers, fig.exhausted = rd.paid, rd.exhausted
    funded = set(chosen)
    for p in data.eligible:
        if p not in funded:
            fig = result.projects[el.ids[p]]
            money = run.sums(data.sup[p])[0]
            fig.reason = SUPPORTERS_SHORT
            fig.available = el.money(money)
            fig.needed = el.money(el.costs[p] - money)
    result.selected = [el.ids[p] for p in chosen]
    result.cost = el.money(sum(el.costs[p] for p in chosen))
    return result
