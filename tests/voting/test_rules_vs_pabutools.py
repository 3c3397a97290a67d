"""Random small elections, tie-heavy ones included: our rules against pabutools 1.2.3 itself.

The pabutools calls are those of tests/fixtures/pb-samples/reference.py; the elections reach pabutools
through our pabulib writer and its own parser.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pabutools = pytest.importorskip("pabutools")

from pabutools.election import (  # noqa: E402
    Additive_Cardinal_Sat,
    AdditiveSatisfaction,
    Cost_Sat,
)
from pabutools.election.ballot import AbstractOrdinalBallot  # noqa: E402
from pabutools.election.pabulib import parse_pabulib_from_string  # noqa: E402
from pabutools.rules import (  # noqa: E402
    completion_by_rule_combination,
    greedy_utilitarian_welfare,
    method_of_equal_shares,
    sequential_phragmen,
)
from pabutools.tiebreaking import lexico_tie_breaking  # noqa: E402

from voting.pabulib import format_pabulib, parse_pabulib  # noqa: E402
from voting.rules import tally  # noqa: E402

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


def _score_times_cost(instance, profile, ballot, project, precomputed_values):  # as in reference.py
    if isinstance(ballot, AbstractOrdinalBallot):
        score = len(ballot) - ballot.position(project) if project in ballot else 0
    else:
        score = ballot.get(project, 0)
    return score * project.cost


class ScoreTimesCost(AdditiveSatisfaction):
    def __init__(self, instance, profile, ballot):
        AdditiveSatisfaction.__init__(self, instance, profile, ballot, _score_times_cost)


def reference_rules(vote_type: str) -> dict:
    """Our rule name -> the pabutools call of reference.py."""
    tie = lexico_tie_breaking
    add1 = dict(sat_class=Cost_Sat, voter_budget_increment=1, tie_breaking=tie)
    greedy = dict(sat_class=Cost_Sat, tie_breaking=tie)
    if vote_type == "approval":
        return {
            "greedy": lambda i, p: greedy_utilitarian_welfare(i, p, **greedy),
            "mes": lambda i, p: method_of_equal_shares(i, p, sat_class=Cost_Sat, tie_breaking=tie),
            "mes-add1": lambda i, p: method_of_equal_shares(i, p, **add1),
            "mes-add1-greedy": lambda i, p: completion_by_rule_combination(
                i, p, [method_of_equal_shares, greedy_utilitarian_welfare], [add1, greedy]
            ),
            "phragmen": lambda i, p: sequential_phragmen(i, p, tie_breaking=tie),
        }
    rules = {
        "greedy": lambda i, p: greedy_utilitarian_welfare(i, p, sat_class=ScoreTimesCost, tie_breaking=tie)
    }
    if vote_type == "cumulative":
        rules["mes"] = lambda i, p: method_of_equal_shares(
            i, p, sat_class=Additive_Cardinal_Sat, tie_breaking=tie
        )
    return rules


@st.composite
def elections(draw: st.DrawFn, vote_type: str) -> str:
    """A pabulib text: few projects with ids 1..12 (so "10" < "9" matters), costs from a small set (many
    equal costs), maybe a twin project (same cost and supporters), few distinct ballots, each cast by
    several voters."""
    n_projects = draw(st.integers(1, 6))
    ids = [str(k) for k in draw(st.permutations(range(1, 13)))[:n_projects]]
    unit = draw(st.sampled_from([1, 3, 10]))
    low = 0 if vote_type == "approval" else 1  # pabutools funds free point projects in set order
    costs = {pid: draw(st.sampled_from([low, 1, 2, 3, 5, 8])) * unit for pid in ids}
    size = 1 if vote_type == "choose-1" else n_projects
    ballot = st.lists(st.sampled_from(ids), unique=True, min_size=1, max_size=size)
    distinct = draw(st.lists(ballot, min_size=1, max_size=4))
    if vote_type != "choose-1" and draw(st.booleans()):  # a twin: same cost, same supporters
        twin = str(20 + int(ids[0]))
        costs[twin] = costs[ids[0]]
        distinct = [vote + [twin] if ids[0] in vote else vote for vote in distinct]
    votes = []
    for vote in distinct:
        points = [draw(st.integers(1, 4)) for _ in vote]
        for _ in range(draw(st.integers(1, 4))):
            row: dict[str, object] = {"voter_id": str(len(votes) + 1), "vote": vote}
            if vote_type == "cumulative":
                row["points"] = points
            votes.append(row)
    budget = draw(st.integers(1, max(1, 2 * sum(costs.values()))))
    projects = [{"project_id": pid, "cost": cost} for pid, cost in costs.items()]
    return format_pabulib({"budget": budget, "vote_type": vote_type}, projects, votes)


def compare(text: str) -> None:
    ours = parse_pabulib(text).profile
    instance, profile = parse_pabulib_from_string(text)
    vote_type = "approval" if ours.vote_type == "choose-1" else ours.vote_type
    for rule, call in reference_rules(vote_type).items():
        expected = [p.name for p in call(instance, profile)]
        result = tally(rule, ours)
        selected = sorted(result.selected) if rule == "phragmen" else result.selected
        assert selected == expected, f"{rule} on\n{text}"
        assert result.cost == sum((Fraction(str(p.cost)) for p in call(instance, profile)), Fraction(0))


@SETTINGS
@given(elections("approval"))
def test_approval_rules_match_pabutools(text: str) -> None:
    """greedy, mes, mes-add1, mes-add1-greedy and phragmen select what pabutools selects (approval)."""
    compare(text)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(elections("choose-1"))
def test_choose_one_rules_match_pabutools(text: str) -> None:
    """choose-1 ballots are approval ballots of one project."""
    compare(text)


@SETTINGS
@given(elections("cumulative"))
def test_cumulative_rules_match_pabutools(text: str) -> None:
    """greedy by points and mes with points as utilities select what pabutools selects."""
    compare(text)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(elections("ordinal"))
def test_ordinal_greedy_matches_pabutools(text: str) -> None:
    """greedy with rank scores L - p selects what pabutools selects with score x cost satisfaction."""
    compare(text)
