"""Tally rules: the reference results of pabutools 1.2.3 on real elections, and small hand-made cases."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voting.pabulib import read_pabulib
from voting.rules import Ballots, Profile, RuleError, greedy, mes, phragmen, tally
from voting.rules.mes_engine import MESData, MESRun
from voting.rules.mes_interval import interval_outcome
from voting.rules.profile import prepare

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "pb-samples"
EXPECTED = json.loads((SAMPLES / "expected.json").read_text())
OUR_RULE = {
    "greedy_votes": "greedy",
    "greedy_score": "greedy",
    "mes_cost": "mes",
    "mes_points": "mes",
    "mes_cost_add1": "mes-add1",
    "mes_cost_add1_greedy": "mes-add1-greedy",
    "seq_phragmen": "phragmen",
}
CASES = [
    pytest.param(name, key, id=f"{name.removesuffix('.pb')}-{key}")
    for name, case in sorted(EXPECTED.items())
    for key, ref in sorted(case["rules"].items())
    if "selected" in ref
]
_PROFILES: dict[str, Profile] = {}


def sample(name: str) -> Profile:
    if name not in _PROFILES:
        _PROFILES[name] = read_pabulib(SAMPLES / name).profile
    return _PROFILES[name]


@pytest.mark.parametrize(("name", "key"), CASES)
def test_reference_result(name: str, key: str) -> None:
    """Our rule selects the reference projects, in the reference order, at the reference total cost."""
    ref = EXPECTED[name]["rules"][key]
    result = tally(OUR_RULE[key], sample(name))
    selected = result.selected
    if key == "seq_phragmen":
        # pabutools returns sequential Phragmen's outcome sorted by project id, not in buying order
        assert ref["selected"] == sorted(ref["selected"])
        selected = sorted(selected)
    assert selected == ref["selected"]
    assert result.cost == Fraction(ref["cost"])
    assert result.budget == Fraction(EXPECTED[name]["budget"])


def test_add1_on_a_budget_in_forint() -> None:
    """mes-add1(-greedy) on a budget in forint (no reference: pabutools runs out of memory stepping one forint
    at a time) finishes with far fewer MES runs than the 42,000 steps, within the budget."""
    prof = sample("Hungary_Budapest_2025_XI_Ujbuda.pb")
    result = tally("mes-add1-greedy", prof)
    assert result.cost <= prof.budget
    by_mes = [pid for pid in result.selected if result.projects[pid].stage == "mes"]
    assert result.selected[: len(by_mes)] == by_mes
    assert set(tally("mes", prof).selected) <= set(by_mes)
    assert int(result.details["mes_runs"]) < 2000
    assert result.details["voter_budget"] > prof.budget / prof.voters + 1000


def election(
    costs: dict[str, int | str], votes: list[list[str]], budget: int | str, vote_type: str = "approval"
) -> Profile:
    return Profile.build(list(costs.items()), budget, votes, vote_type)


def test_greedy_skips_what_does_not_fit() -> None:
    """Greedy funds by votes and skips a project that no longer fits, trying the next one."""
    prof = election({"A": 60, "B": 50, "C": 40}, [["A", "B", "C"], ["A", "B"], ["A"]], 100)
    result = tally("greedy", prof)
    assert result.selected == ["A", "C"]
    assert result.cost == 100
    assert result.projects["B"].reason == "did-not-fit"
    assert result.projects["B"].needed == 10


def test_mes_gives_equal_shares() -> None:
    """MES gives the minority of 2 voters out of 6 a third of the budget; greedy gives it nothing."""
    votes = [["P1", "P2", "P3"]] * 4 + [["Q1", "Q2"]] * 2
    prof = election({"P1": 100, "P2": 100, "P3": 100, "Q1": 100, "Q2": 100}, votes, 300)
    assert tally("greedy", prof).selected == ["P1", "P2", "P3"]
    result = tally("mes", prof)
    assert result.selected == ["P1", "P2", "Q1"]
    assert result.projects["P1"].price == 25
    assert result.projects["Q1"].price == 50
    assert result.projects["P3"].reason == "supporters-budget-insufficient"
    assert result.projects["P3"].available == 0


@pytest.mark.parametrize("rule", ["greedy", "mes", "mes-add1", "mes-add1-greedy", "phragmen"])
def test_ties_go_to_the_smaller_id_as_a_string(rule: str) -> None:
    """Equal projects with room for only one: "10" wins over "9" (string order)."""
    prof = election({"9": 50, "10": 50}, [["9", "10"], ["9", "10"]], 60)
    assert tally(rule, prof).selected == ["10"]


def test_decimal_costs_are_exact() -> None:
    """Costs and budget with decimals are summed exactly."""
    prof = election({"a": "1000.5", "b": "0.25", "c": "1000.01"}, [["a", "b", "c"]] * 3, "2000.75")
    result = tally("greedy", prof)
    assert result.selected == ["a", "b"]
    assert result.cost == Fraction("1000.75")
    assert tally("mes", prof).cost == Fraction("1000.75")


def test_ordinal_scores_and_cumulative_points() -> None:
    """Ordinal ballots score L - p; cumulative ballots use the points, for greedy and for MES."""
    ordinal = election({"x": 10, "y": 10, "z": 10}, [["z", "y", "x"], ["x", "z"]], 20, "ordinal")
    result = tally("greedy", ordinal)
    assert [result.projects[p].score for p in "xyz"] == [3, 2, 4]
    assert result.selected == ["z", "x"]
    cumulative = Profile.build([("x", 10), ("y", 30)], 40, [{"x": 1, "y": 5}, {"x": 2}], "cumulative")
    assert tally("greedy", cumulative).selected == ["y", "x"]
    result = tally("mes", cumulative)  # 20 per voter: y's only supporter cannot pay 30
    assert result.selected == ["x"]
    assert result.projects["x"].rho == Fraction(10, 3)  # price per point
    assert result.projects["y"].needed == 30 - (20 - Fraction(10, 3))


@pytest.mark.parametrize(
    ("rule", "vote_type"),
    [("phragmen", "cumulative"), ("mes", "ordinal"), ("mes-add1", "cumulative"), ("nonsense", "approval")],
)
def test_rule_not_applicable(rule: str, vote_type: str) -> None:
    """A rule that does not apply to the ballots raises RuleError, also when called directly."""
    votes: list = [{"a": 1}] if vote_type == "cumulative" else [["a"]]
    prof = Profile.build([("a", 1)], 1, votes, vote_type)
    with pytest.raises(RuleError):
        tally(rule, prof)
    if vote_type == "cumulative" and rule == "phragmen":
        with pytest.raises(RuleError):
            phragmen(prof.projects, prof.budget, prof.ballots, vote_type=vote_type)


def test_rule_functions_take_pairs_and_csr_ballots() -> None:
    """Rules are plain functions of (id, cost) pairs, a budget and CSR ballots."""
    ballots = Ballots(np.array([0, 2, 3]), np.array([0, 1, 1], dtype=np.int32))
    projects = [("a", 5), ("b", 5)]
    assert greedy(projects, 5, ballots, vote_type="approval").selected == ["b"]
    assert mes(projects, 15, ballots, vote_type="approval").selected == ["b", "a"]


def test_no_voters() -> None:
    """Without ballots MES funds nothing and greedy funds by id order what fits."""
    prof = election({"a": 5, "b": 5}, [], 5)
    assert tally("mes-add1-greedy", prof).selected == ["a"]
    assert tally("mes", prof).selected == []


def naive_add1(prof: Profile) -> list[str]:
    """pabutools' add1 loop literally: one more currency unit per voter per run, no jumps."""
    el = prepare(prof.projects, prof.budget, prof.ballots, prof.vote_type)
    data = MESData(el)
    b = Fraction(el.budget, data.voters)
    previous: list[int] = []
    while True:
        chosen = MESRun(data, b).run()
        spent = sum(el.costs[p] for p in chosen)
        if spent > el.budget:
            return [el.ids[p] for p in previous]
        if all(el.costs[p] > el.budget - spent for p in set(data.eligible) - set(chosen)):
            return [el.ids[p] for p in chosen]
        previous, b = chosen, b + el.scale


@st.composite
def approval_elections(draw: st.DrawFn) -> Profile:
    n_projects = draw(st.integers(1, 6))
    ids = [str(k) for k in draw(st.permutations(range(1, 13)))[:n_projects]]
    unit = draw(st.sampled_from([1, 7, 100]))
    costs = {pid: draw(st.sampled_from([1, 2, 3, 5, 8])) * unit for pid in ids}
    ballot = st.lists(st.sampled_from(ids), unique=True, max_size=n_projects)
    distinct = draw(st.lists(ballot, min_size=1, max_size=4))
    votes = [b for b in distinct for _ in range(draw(st.integers(1, 4)))]
    budget = draw(st.integers(1, 2 * sum(costs.values())))
    return election(costs, votes, budget)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(approval_elections())
def test_add1_jumps_equal_stepping(prof: Profile) -> None:
    """Stepping over budgets where MES cannot change gives what one-unit steps give."""
    assert tally("mes-add1", prof).selected == naive_add1(prof)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(approval_elections(), st.integers(0, 40), st.integers(0, 40))
def test_certified_range_holds_at_every_budget(prof: Profile, start: int, width: int) -> None:
    """An outcome certified for a range of per-voter budgets is MES's outcome at every budget in it."""
    el = prepare(prof.projects, prof.budget, prof.ballots, prof.vote_type)
    data = MESData(el)
    low = Fraction(el.budget, data.voters) + start
    certified = interval_outcome(data, low, low + width)
    if certified is not None:
        for b in {low, low + Fraction(width, 3), low + Fraction(width, 2), low + width}:
            assert MESRun(data, b).run() == certified
