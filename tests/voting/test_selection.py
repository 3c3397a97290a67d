"""Ballot validity rules (voting/selection.py), shared by the web ballot, paper entry and the verifier."""

from __future__ import annotations

import pytest

from voting.selection import BallotConfig, InvalidSelection, validate

COSTS = {1: 40_000_00, 2: 30_000_00, 3: 50_000_00, 4: 10_000_00}


def cfg(kind: str, **kw) -> BallotConfig:
    return BallotConfig(ballot_type=kind, budget_cents=100_000_00, project_costs=COSTS, **kw)


def test_approval_limits_and_canonical_order():
    """Approval: between min and max projects; canonical form is ascending ids."""
    c = cfg("approval", min_choices=1, max_choices=3)
    assert validate(c, [3, 1]) == [1, 3]
    assert validate(c, ["2"]) == [2]
    for raw, code in [
        ([], "empty"),
        ([1, 2, 3, 4], "too_many"),
        ([1, 1], "duplicate_project"),
        ([9], "unknown_project"),
        ("1,2", "not_a_list"),
        ([True], "bad_project_id"),
        (["x"], "bad_project_id"),
    ]:
        with pytest.raises(InvalidSelection) as exc:
            validate(c, raw)
        assert exc.value.code == code, raw
    with pytest.raises(InvalidSelection, match="too_few"):
        validate(cfg("approval", min_choices=2), [1])


def test_knapsack_budget():
    """Knapsack: the chosen projects' total cost must fit the budget."""
    c = cfg("knapsack")
    assert validate(c, [1, 2, 4]) == [1, 2, 4]  # 80,000 €
    with pytest.raises(InvalidSelection) as exc:
        validate(c, [1, 2, 3])  # 120,000 €
    assert exc.value.code == "over_budget" and exc.value.details["total"] == 120_000_00


def test_cumulative_points():
    """Cumulative: at most N points in total and M per project; zero entries dropped; keys canonical."""
    c = cfg("cumulative", points_total=10, points_per_project=5)
    assert validate(c, {"3": 5, "1": 4, "2": 0}) == {"1": 4, "3": 5}
    for raw, code in [
        ({"1": 6}, "too_many_points_for_project"),
        ({"1": 5, "2": 5, "3": 1}, "too_many_points"),
        ({"1": -1}, "bad_points"),
        ({"1": 1.5}, "bad_points"),
        ({"9": 1}, "unknown_project"),
        ({}, "empty"),
        ([1], "not_an_object"),
        ({"a": 1}, "bad_project_id"),
    ]:
        with pytest.raises(InvalidSelection) as exc:
            validate(c, raw)
        assert exc.value.code == code, raw


def test_ranked_keeps_order():
    """Ranked: up to K projects, order kept."""
    c = cfg("ranked", max_choices=3)
    assert validate(c, [4, 1, 2]) == [4, 1, 2]
    with pytest.raises(InvalidSelection, match="too_many"):
        validate(c, [1, 2, 3, 4])


def test_config_json_round_trip():
    """The configuration travels in the audit bundle as JSON and comes back equal."""
    c = cfg("cumulative", points_total=10, points_per_project=5, min_choices=1, max_choices=4)
    assert BallotConfig.from_json(c.to_json()) == c
    with pytest.raises(InvalidSelection, match="unknown_ballot_type"):
        validate(cfg("borda"), [1])
