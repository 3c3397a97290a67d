"""Counting stored ballots (voting/tally.py): the tally of a closed vote equals voting.rules on the same
ballots for every ballot type, district sub-budgets are counted separately, ballots are streamed, ties go to
the smaller project id as text, and a failing rule is recorded."""

from __future__ import annotations

import json
import random
from fractions import Fraction

import pytest
from sqlalchemy import update

from app.database import new_session
from tests.conftest import query
from tests.voting.test_ballots import (
    cast,
    close,
    district_id,
    make_process,
    mount_voting,
    project_ids,
    reload,
    set_district,
)
from voting import lifecycle, tally
from voting.models import Ballot, Process, TallyRun
from voting.rules import Profile
from voting.rules import tally as run_rule

PROJECTS = [
    (f"Projekt {k}", cost, None, None)
    for k, cost in enumerate(
        [90_000_00, 120_000_00, 45_000_00, 60_000_00, 30_000_00, 150_000_00, 75_000_00, 20_000_00, 55_000_00]
    )
]
COMBOS = [
    ("approval", "greedy"),
    ("approval", "mes"),
    ("approval", "mes-add1"),
    ("approval", "mes-add1-greedy"),
    ("approval", "phragmen"),
    ("knapsack", "mes-add1-greedy"),
    ("cumulative", "greedy"),
    ("cumulative", "mes"),
    ("ranked", "greedy"),
]


@pytest.fixture
def voting_app(app):
    return mount_voting(app)


def random_selection(rng: random.Random, kind: str, ids: list[int], budget: int, costs: dict[int, int]):
    if kind == "cumulative":
        chosen = rng.sample(ids, rng.randint(1, 3))
        points, left = {}, 10
        for pid in chosen:
            n = rng.randint(1, min(5, left)) if left else 0
            if n:
                points[str(pid)] = n
                left -= n
        return points
    if kind == "ranked":
        return rng.sample(ids, rng.randint(1, 4))
    chosen = rng.sample(ids, rng.randint(1, 4))
    if kind == "knapsack":
        while sum(costs[p] for p in chosen) > budget:
            chosen.pop()
    return chosen


@pytest.mark.parametrize(("kind", "rule"), COMBOS)
def test_tally_equals_the_rules_on_the_same_ballots(db, voting_app, make_user, kind, rule):
    """Cast ballots through the service, close, run the tally job: the stored result equals voting.rules run
    directly on the cast selections (money in euros), for every ballot type and rule."""
    budget = 300_000_00
    process = make_process(db, ballot_type=kind, rule=rule, projects=PROJECTS, budget_cents=budget)
    ids = project_ids(db, process)
    costs = {pid: cost for pid, (_t, cost, _d, _th) in zip(ids, PROJECTS, strict=True)}
    rng = random.Random(f"{kind}-{rule}")
    final: dict[int, object] = {}
    for k in range(14):
        user = make_user()
        final[k] = random_selection(rng, kind, ids, budget, costs)
        cast(db, voting_app, process, user, final[k])
        if k % 4 == 0:  # some voters change their mind: only the last version counts
            final[k] = random_selection(rng, kind, ids, budget, costs)
            cast(db, voting_app, process, user, final[k])
    close(db, process)
    (run,) = lifecycle.run_tally(db.engine, process_id=process.id)
    assert run.status == "done", run.error
    stored = json.loads(run.result)

    vote_type = {
        "approval": "approval",
        "knapsack": "approval",
        "cumulative": "cumulative",
        "ranked": "ordinal",
    }[kind]
    votes = [
        {str(p): n for p, n in sel.items()} if isinstance(sel, dict) else [str(p) for p in sel]
        for sel in final.values()
    ]
    profile = Profile.build(
        [(str(pid), Fraction(costs[pid], 100)) for pid in ids], Fraction(budget, 100), votes, vote_type
    )
    expected = run_rule(rule, profile)
    assert stored["selected"] == [int(p) for p in expected.selected]
    assert stored["cost_cents"] == int(expected.cost * 100) <= budget
    assert stored["ballots"] == 14 and stored["rule"] == rule
    figures = {p["id"]: p for p in stored["projects"]}
    for pid in ids:
        assert figures[pid]["score"] == int(expected.projects[str(pid)].score) or figures[pid][
            "score"
        ] == str(expected.projects[str(pid)].score)


def test_district_sub_budgets_are_tallied_separately(db, voting_app, make_user):
    """Each district's ballots are counted against its own sub-budget and projects; the city-wide ballot
    against the city budget."""
    process = make_process(
        db,
        projects=[
            ("Stadt A", 200_000_00, None, None),
            ("Stadt B", 150_000_00, None, None),
            ("Elberfeld A", 40_000_00, "elberfeld", None),
            ("Elberfeld B", 30_000_00, "elberfeld", None),
            ("Barmen A", 45_000_00, "barmen", None),
            ("Barmen B", 20_000_00, "barmen", None),
        ],
        district_budgets={"elberfeld": 50_000_00, "barmen": 70_000_00},
        budget_cents=300_000_00,
    )
    elberfeld, barmen = district_id(db, "elberfeld"), district_id(db, "barmen")
    city = project_ids(db, process, 0)
    e_ids, b_ids = project_ids(db, process, elberfeld), project_ids(db, process, barmen)
    for k in range(3):
        user = set_district(db, make_user(), "elberfeld")
        cast(db, voting_app, process, user, [city[1]])
        cast(db, voting_app, process, user, [e_ids[1]] if k else [e_ids[0]], elberfeld)
    for _ in range(2):
        user = set_district(db, make_user(), "barmen")
        cast(db, voting_app, process, user, [city[0]])
        cast(db, voting_app, process, user, b_ids, barmen)
    close(db, process)
    runs = {r.scope: json.loads(r.result) for r in lifecycle.run_tally(db.engine, process_id=process.id)}
    assert set(runs) == {0, elberfeld, barmen}
    assert (
        runs[0]["selected"] == [city[1]] and runs[0]["budget_cents"] == 300_000_00 and runs[0]["ballots"] == 5
    )
    assert runs[elberfeld]["selected"] == [e_ids[1]] and runs[elberfeld]["budget_cents"] == 50_000_00
    assert runs[elberfeld]["ballots"] == 3
    assert runs[barmen]["selected"] == b_ids and runs[barmen]["cost_cents"] == 65_000_00
    assert {p["id"] for p in runs[barmen]["projects"]} == set(b_ids)


def test_ties_go_to_the_smaller_project_id_as_text(db, voting_app, make_user):
    """Two projects with equal votes of which only one fits: the id first in ascending string order wins
    ("10" before "9")."""
    projects = [(f"P{k}", 10_00, None, None) for k in range(8)] + [
        ("Tie A", 60_00, None, None),
        ("Tie B", 60_00, None, None),
    ]
    process = make_process(db, projects=projects, budget_cents=100_00)
    ids = project_ids(db, process)
    a, b = ids[8], ids[9]
    for _ in range(2):
        cast(db, voting_app, process, make_user(), [a, b])
    close(db, process)
    (run,) = lifecycle.run_tally(db.engine, process_id=process.id)
    selected = json.loads(run.result)["selected"]
    winner, loser = sorted((a, b), key=str)
    assert selected[0] == winner and loser not in selected


def test_ballots_are_streamed_in_batches(db, voting_app, make_user):
    """Reading in small batches gives the same arrays as one batch and reports progress while reading."""
    process = make_process(db, ballot_type="cumulative")
    ids = project_ids(db, process)
    for k in range(7):
        cast(db, voting_app, process, make_user(), {str(ids[k]): 2, str(ids[(k + 3) % 8]): 1})
    close(db, process)
    seen: list[float] = []
    with new_session(db.engine) as s:
        p = s.get(Process, process.id)
        scope = lifecycle.get_scope(s, p, 0)
        small = tally.build_profile(s, p, scope, batch=2, on_progress=lambda f, stage: seen.append(f))
        big = tally.build_profile(s, p, scope)
    assert small.ballots.indptr.tolist() == big.ballots.indptr.tolist()
    assert small.ballots.items.tolist() == big.ballots.items.tolist()
    assert small.ballots.points.tolist() == big.ballots.points.tolist()
    assert small.voters == 7 and len(seen) == 3 and seen == sorted(seen)
    assert small.budget == Fraction(500_000_00, 100)


def test_a_failing_rule_is_recorded_and_can_run_again(db, voting_app, make_user):
    """A rule that cannot count the ballots fails the run with its reason; staff queue it again."""
    process = make_process(db, ballot_type="cumulative")
    cast(db, voting_app, process, make_user(), {str(project_ids(db, process)[0]): 3})
    close(db, process)
    with new_session(db.engine, write=True) as s:
        s.execute(update(Process).where(Process.id == process.id).values(rule="phragmen"))
        s.execute(update(TallyRun).where(TallyRun.process_id == process.id).values(rule="phragmen"))
        s.commit()
    (run,) = lifecycle.run_tally(db.engine, process_id=process.id)
    assert run.status == "failed" and "phragmen" in run.error.lower()
    with new_session(db.engine) as s:
        assert tally.needs_tally(s, s.get(Process, process.id))
        assert not tally.is_done(s, s.get(Process, process.id))
    with new_session(db.engine, write=True) as s:
        s.execute(update(Process).where(Process.id == process.id).values(rule="greedy"))
        tally.queue_tally(s, process=s.get(Process, process.id))
        s.commit()
    (again,) = lifecycle.run_tally(db.engine, process_id=process.id)
    assert again.status == "done"
    assert len(query(db, TallyRun, TallyRun.process_id == process.id)) == 2
    assert len(query(db, Ballot, Ballot.process_id == process.id)) == 1
    assert reload(db, process).rule == "greedy"
