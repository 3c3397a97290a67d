"""The verifier's own tally rules (voting/verifier_rules.py, standard library only) select exactly what the
platform's rules (voting/rules, numpy) select: on every real election in tests/fixtures/pb-samples and on
random small elections, tie-heavy ones and amounts in cents included. Two independent implementations
that agree are the point of the verifier."""

from __future__ import annotations

import ast
import json
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voting import verifier_rules as vr
from voting.pabulib import read_pabulib
from voting.rules import Profile, tally

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "pb-samples"
EXPECTED = json.loads((SAMPLES / "expected.json").read_text())
REFERENCE_RULES = {
    "greedy_votes": "greedy",
    "greedy_score": "greedy",
    "mes_cost": "mes",
    "mes_points": "mes",
    "mes_cost_add1": "mes-add1",
    "mes_cost_add1_greedy": "mes-add1-greedy",
    "seq_phragmen": "phragmen",
}
CASES = [
    (name, ref)
    for name, data in sorted(EXPECTED.items())
    for ref, outcome in sorted(data["rules"].items())
    if "error" not in outcome
]
SETTINGS = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


def votes_of(profile: Profile) -> list:
    ids, b = profile.project_ids, profile.ballots
    if b.points is None:
        return [[ids[i] for i in b.ballot(v)] for v in range(b.voters)]
    out = []
    for v in range(b.voters):
        lo, hi = int(b.indptr[v]), int(b.indptr[v + 1])
        points = b.points[lo:hi].tolist()
        out.append({ids[i]: Fraction(p, b.points_scale) for i, p in zip(b.ballot(v), points, strict=True)})
    return out


@pytest.mark.parametrize(("name", "reference"), CASES, ids=[f"{n[:28]}-{r}" for n, r in CASES])
def test_real_elections_match_the_reference_and_the_platform(name, reference):
    """Same selection, in the same order, as voting/rules; the same set as pabutools (expected.json, which
    lists Phragmen's selection sorted)."""
    profile = read_pabulib(SAMPLES / name).profile
    rule = REFERENCE_RULES[reference]
    ours = vr.tally(rule, list(profile.projects), profile.budget, votes_of(profile), profile.vote_type)
    platform = tally(rule, profile)
    assert list(ours.selected) == platform.selected
    assert ours.cost == platform.cost
    expected = EXPECTED[name]["rules"][reference]["selected"]
    assert sorted(ours.selected) == sorted(expected)
    if rule != "phragmen":
        assert list(ours.selected) == expected
    assert ours.cost == Fraction(EXPECTED[name]["rules"][reference]["cost"])


def test_add1_in_small_currency_units_matches_the_platform():
    """Budgets in cents (100 times more add1 steps): interval runs skip where nothing changes and still
    give the platform's outcome."""
    profile = read_pabulib(SAMPLES / "Netherlands_Assen_2024.pb").profile
    projects = [(pid, cost * 100) for pid, cost in profile.projects]
    cents = Profile.build(projects, profile.budget * 100, votes_of(profile), "approval")
    for rule in ("mes-add1", "mes-add1-greedy"):
        ours = vr.tally(rule, projects, profile.budget * 100, votes_of(profile), "approval")
        assert list(ours.selected) == tally(rule, cents).selected


@st.composite
def elections(draw: st.DrawFn, vote_type: str):
    """Up to 9 projects with ids 1..12 (so "10" sorts before "9"), few distinct costs (ties), 0..25 voters."""
    ids = draw(st.lists(st.integers(1, 12), min_size=1, max_size=9, unique=True))
    unit = draw(st.sampled_from([1, 100]))
    costs = [draw(st.sampled_from([1, 2, 3, 5, 8, 10])) * unit for _ in ids]
    budget = draw(st.integers(1, 25)) * unit
    if draw(st.booleans()):
        costs = [Fraction(c, unit) for c in costs]
        budget = Fraction(budget, unit)
    n = draw(st.integers(0, 25))
    votes = []
    for _ in range(n):
        chosen = draw(st.lists(st.sampled_from(ids), min_size=0, max_size=len(ids), unique=True))
        if vote_type == "cumulative":
            votes.append({str(pid): draw(st.integers(1, 4)) for pid in chosen})
        else:
            votes.append([str(pid) for pid in chosen])
    return [(str(pid), cost) for pid, cost in zip(ids, costs, strict=True)], budget, votes


def _compare(rule: str, election, vote_type: str) -> None:
    projects, budget, votes = election
    ours = vr.tally(rule, projects, budget, votes, vote_type)
    platform = tally(rule, Profile.build(projects, budget, votes, vote_type))
    assert list(ours.selected) == platform.selected, (rule, projects, budget, votes)
    assert ours.cost == platform.cost


@SETTINGS
@given(election=elections("approval"))
def test_random_approval_elections(election):
    for rule in ("greedy", "mes", "mes-add1", "mes-add1-greedy", "phragmen"):
        _compare(rule, election, "approval")


@SETTINGS
@given(election=elections("cumulative"))
def test_random_cumulative_elections(election):
    for rule in ("greedy", "mes"):
        _compare(rule, election, "cumulative")


@SETTINGS
@given(election=elections("ordinal"))
def test_random_ranked_elections(election):
    _compare("greedy", election, "ordinal")


def test_tie_breaking_compares_ids_as_strings():
    """Two identical projects: "10" wins over "9" (string order), for every rule."""
    projects = [("9", 5), ("10", 5)]
    for rule in ("greedy", "mes", "mes-add1", "mes-add1-greedy", "phragmen"):
        outcome = vr.tally(rule, projects, 5, [["9", "10"], ["9", "10"]], "approval")
        assert outcome.selected == ("10",), rule


def test_refuses_what_does_not_apply():
    with pytest.raises(vr.TallyError, match="does not apply"):
        vr.tally("phragmen", [("1", 1)], 1, [{"1": 1}], "cumulative")
    with pytest.raises(vr.TallyError, match="unknown rule"):
        vr.tally("borda", [("1", 1)], 1, [], "approval")
    with pytest.raises(vr.TallyError, match="unknown project"):
        vr.tally("greedy", [("1", 1)], 1, [["2"]], "approval")
    with pytest.raises(vr.TallyError, match="twice"):
        vr.tally("greedy", [("1", 1)], 1, [["1", "1"]], "approval")
    with pytest.raises(vr.TallyError, match="exact amount"):
        vr.tally("greedy", [("1", 0.5)], 1, [], "approval")


def test_standard_library_only():
    """No numpy, no platform code: the verifier must run with Python alone."""
    tree = ast.parse(Path(vr.__file__).read_text())
    imported = {
        (node.module or "").split(".")[0] if isinstance(node, ast.ImportFrom) else alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    import sys

    assert imported <= set(sys.stdlib_module_names), imported
