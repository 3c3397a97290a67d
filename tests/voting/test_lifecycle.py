"""The life of a vote (voting/lifecycle.py): pre-flight issues as data, freeze and open (refused while an
issue remains), close at the planned time or by staff (counts logged, head signed, tally queued), the tally
job with its progress, publication, destroying the voter links, and ``mitmachen voting``."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest
from sqlalchemy import select

from app.database import new_session, utcnow
from tests.conftest import query
from tests.voting.test_ballots import (
    APPROVAL_PROJECTS,
    ballot_state,
    cast,
    close,
    count,
    district_id,
    log_entries,
    make_process,
    mount_voting,
    project_ids,
    reload,
)
from voting import ballots, lifecycle, voting_cli
from voting.merkle import canonical_json
from voting.models import Process, Project, SignedTreeHead, TallyRun, VoterLink
from voting.selection import BallotConfig

NOW = utcnow()


@pytest.fixture
def voting_app(app):
    return mount_voting(app)


def issues_of(db, process) -> list[str]:
    with new_session(db.engine) as s:
        return [i.code for i in lifecycle.preflight(s, s.get(Process, process.id))]


PREFLIGHT = [
    # (process options, expected issue code)
    ({"projects": []}, "no_projects"),
    ({"projects": [("Ohne Kosten", None, None, None)]}, "project_without_cost"),
    ({"projects": [("Zu teuer", 600_000_00, None, None)]}, "project_over_budget"),
    (
        {
            "projects": [("Stadtweit", 1_00, None, None), ("Barmen", 1_00, "barmen", None)],
            "district_budgets": {"elberfeld": 10_00},
        },
        "project_without_ballot",
    ),
    (
        {"projects": [("Stadtweit", 1_00, None, None)], "district_budgets": {"elberfeld": 10_00}},
        "empty_ballot",
    ),
    ({"voting_starts_at": None}, "voting_dates_missing"),
    ({"voting_ends_at": NOW - dt.timedelta(days=2)}, "voting_ends_before_start"),
    (
        {"voting_ends_at": NOW - dt.timedelta(minutes=1), "voting_starts_at": NOW - dt.timedelta(days=2)},
        "voting_end_passed",
    ),
    ({"review_starts_at": NOW + dt.timedelta(days=30)}, "dates_out_of_order"),
    (
        {
            "ballot_type": "knapsack",
            "min_choices": 3,
            "budget_cents": 200_000_00,
            "projects": APPROVAL_PROJECTS[:3],
        },
        "min_choices_over_budget",
    ),
    ({"min_choices": 9}, "min_choices_unreachable"),
    ({"max_choices": 0}, "max_choices_zero"),
    ({"ballot_type": "cumulative", "points_total": None}, "points_missing"),
    ({"ballot_type": "cumulative", "rule": "phragmen"}, "rule_not_applicable"),
    ({"ballot_type": "ranked", "rule": "mes"}, "rule_not_applicable"),
    ({"eligible_district_ids": "999999"}, "eligible_district_unknown"),
]


@pytest.mark.parametrize(("options", "code"), PREFLIGHT)
def test_preflight_reports_each_issue(db, options, code):
    """Each problem that would spoil a vote is reported as data with a stable code and a message."""
    process = make_process(db, phase="preparation", now=NOW, **options)
    with new_session(db.engine) as s:
        found = lifecycle.preflight(s, s.get(Process, process.id))
    assert code in [i.code for i in found]
    assert all(i.message() and "%(" not in i.message() for i in found)


def test_a_sound_process_has_no_issues(db):
    process = make_process(
        db,
        phase="preparation",
        district_budgets={"elberfeld": 50_000_00},
        projects=[*APPROVAL_PROJECTS, ("Elberfeld", 20_000_00, "elberfeld", None)],
    )
    assert issues_of(db, process) == []


def test_open_refuses_while_issues_remain_and_writes_nothing(db):
    """Opening (and freezing) is refused while an issue remains; the caller's transaction holds nothing."""
    process = make_process(db, phase="preparation", projects=[("Ohne Kosten", None, None, None)])
    with new_session(db.engine, write=True) as s:
        with pytest.raises(lifecycle.LifecycleError) as info:
            lifecycle.open_voting(s, process=s.get(Process, process.id))
        s.rollback()
    assert [i.code for i in info.value.issues] == ["project_without_cost"]
    assert reload(db, process).frozen_at is None and log_entries(db, process) == []


def test_open_freezes_and_logs_the_contract_payloads(db):
    """Opening freezes the project list (process.frozen: hash and list) and logs every ballot's rules and
    projects (process.opened), in the vocabulary the independent verifier replays."""
    process = make_process(
        db,
        phase="voting",
        projects=[("Stadtweit", 100_00, None, None), ("Elberfeld", 50_00, "elberfeld", None)],
        district_budgets={"elberfeld": 1_000_00},
        max_choices=2,
    )
    elberfeld = district_id(db, "elberfeld")
    city, local = project_ids(db, process, 0)[0], project_ids(db, process, elberfeld)[0]
    frozen, opened = log_entries(db, process)
    assert (frozen["type"], opened["type"]) == ("process.frozen", "process.opened")
    rows = [
        {"id": city, "title": "Stadtweit", "cost_cents": 100_00, "scope": 0},
        {"id": local, "title": "Elberfeld", "cost_cents": 50_00, "scope": elberfeld},
    ]
    assert frozen["payload"]["projects"] == rows
    digest = hashlib.sha256(canonical_json(rows)).hexdigest()
    assert frozen["payload"]["projects_hash"] == digest == reload(db, process).projects_hash
    payload = opened["payload"]
    assert set(payload) == {"scopes", "rule", "voting_starts_at", "voting_ends_at", "projects_hash"}
    assert payload["projects_hash"] == digest and payload["rule"] == "greedy"
    config = BallotConfig.from_json(payload["scopes"][str(elberfeld)]["config"])
    assert config.budget_cents == 1_000_00 and dict(config.project_costs) == {local: 50_00}
    assert config.max_choices == 2 and config.ballot_type == "approval"
    assert payload["scopes"]["0"]["projects"] == [{"id": city, "title": "Stadtweit", "cost_cents": 100_00}]
    assert payload["voting_ends_at"].endswith("Z")


def test_open_waits_for_the_planned_start_and_open_due_opens_frozen_votes(db):
    """Before the planned start, opening is refused; a frozen vote opens by itself when its time comes."""
    start = utcnow() + dt.timedelta(hours=2)
    process = make_process(db, phase="preparation", voting_starts_at=start)
    with new_session(db.engine, write=True) as s:
        with pytest.raises(lifecycle.LifecycleError) as info:
            lifecycle.open_voting(s, process=s.get(Process, process.id))
        assert "voting_not_started" in [i.code for i in info.value.issues]
        s.rollback()
        lifecycle.freeze(s, process=s.get(Process, process.id))
        assert lifecycle.open_due(s, utcnow()) == []
        s.commit()
    with new_session(db.engine, write=True) as s:
        [(opened, issues)] = lifecycle.open_due(s, start + dt.timedelta(minutes=1))
        s.commit()
    assert issues == [] and opened.id == process.id
    assert reload(db, process).voting_opened_at is not None


def test_projects_changed_after_freezing_block_opening(db):
    process = make_process(db, phase="preparation")
    with new_session(db.engine, write=True) as s:
        lifecycle.freeze(s, process=s.get(Process, process.id))
        s.commit()
    with new_session(db.engine, write=True) as s:
        project = s.execute(select(Project).where(Project.process_id == process.id)).scalars().first()
        project.cost_cents += 1
        s.commit()
    assert "projects_changed" in issues_of(db, process)


def test_lifecycle_steps_refuse_the_wrong_phase(db):
    """Every step checks its phase: no second opening, no close before opening, no publication before a
    finished tally, no link destruction before publication."""
    before = make_process(db, phase="preparation")
    during = make_process(db, phase="voting")
    steps = {
        "close": (before, lifecycle.close_voting),
        "open": (during, lifecycle.open_voting),
        "freeze": (during, lifecycle.freeze),
        "publish": (during, lifecycle.publish_results),
        "destroy": (during, lifecycle.destroy_links),
    }
    for name, (process, step) in steps.items():
        with new_session(db.engine, write=True) as s:
            with pytest.raises(lifecycle.LifecycleError):
                step(s, process=s.get(Process, process.id))
            s.rollback()
        assert name and len(log_entries(db, process)) == (0 if process is before else 2)


def test_close_logs_counts_signs_a_head_and_queues_the_tally(db, voting_app, make_user):
    """Closing logs process.closed with the ballots per scope, signs a tree head ("close"), queues one
    tally run per scope with the process's rule; then ballots are refused."""
    process = make_process(
        db,
        projects=[*APPROVAL_PROJECTS, ("Elberfeld", 20_000_00, "elberfeld", None)],
        district_budgets={"elberfeld": 50_000_00},
        rule="mes",
    )
    elberfeld = district_id(db, "elberfeld")
    ids = project_ids(db, process)
    for k in range(3):
        cast(db, voting_app, process, make_user(), ids[k : k + 2])
    close(db, process)
    closed = log_entries(db, process, "process.closed")
    assert [e["payload"] for e in closed] == [{"ballots": {"0": 3, str(elberfeld): 0}}]
    heads = query(
        db, SignedTreeHead, SignedTreeHead.log_id == f"process:{process.id}", SignedTreeHead.reason == "close"
    )
    assert len(heads) == 1 and heads[0].size == closed[0]["index"] + 1
    runs = query(db, TallyRun, TallyRun.process_id == process.id)
    assert sorted((r.scope, r.rule, r.status, r.progress) for r in runs) == [
        (0, "mes", "running", 0),
        (elberfeld, "mes", "running", 0),
    ]
    with pytest.raises(ballots.BallotError):
        cast(db, voting_app, process, make_user(), ids[:1])


def test_close_due_closes_only_votes_whose_end_passed(db):
    now = utcnow()
    due = make_process(db, now=now - dt.timedelta(days=7, minutes=5))
    running = make_process(db)
    with new_session(db.engine, write=True) as s:
        closed = lifecycle.close_due(s, now)
        s.commit()
    assert [p.id for p in closed] == [due.id]
    assert reload(db, due).voting_closed_at is not None and reload(db, running).voting_closed_at is None
    assert lifecycle.phase(reload(db, running)) == lifecycle.Phase.VOTING


def test_tally_job_records_progress_and_results(db, voting_app, make_user):
    """The tally job claims the queued runs, reports rising progress and stores the result; a second
    worker finds nothing to do."""
    process = make_process(db)
    ids = project_ids(db, process)
    for k in range(5):
        cast(db, voting_app, process, make_user(), ids[k : k + 3])
    close(db, process)
    seen: list[float] = []
    runs = lifecycle.run_tally(db.engine, process_id=process.id, on_progress=lambda f, stage: seen.append(f))
    assert [(r.status, r.progress, r.ballots) for r in runs] == [("done", 100, 5)]
    assert seen and seen == sorted(seen) and seen[-1] == 1.0
    result = json.loads(runs[0].result)
    assert result["selected"] and result["budget_cents"] == 500_000_00 and result["ballots"] == 5
    assert lifecycle.run_tally(db.engine, process_id=process.id) == []


def test_publish_and_destroy_links(db, voting_app, make_user):
    """Publication logs tally.published per scope (selection, cost, budget); afterwards staff can destroy
    the voter links, which is logged, and receipts can no longer be looked up."""
    process = make_process(db)
    ids = project_ids(db, process)
    voter = make_user()
    cast(db, voting_app, process, voter, ids[:2])
    cast(db, voting_app, process, make_user(), ids[1:2])
    close(db, process)
    with new_session(db.engine, write=True) as s:
        with pytest.raises(lifecycle.LifecycleError) as info:
            lifecycle.publish_results(s, process=s.get(Process, process.id))
        assert info.value.code == "tally_unfinished"
    lifecycle.run_tally(db.engine, process_id=process.id)
    with new_session(db.engine, write=True) as s:
        lifecycle.publish_results(s, process=s.get(Process, process.id))
        s.commit()
    (published,) = log_entries(db, process, "tally.published")
    run = query(db, TallyRun, TallyRun.process_id == process.id)[0]
    result = json.loads(run.result)
    assert published["payload"] == {
        "scope": 0,
        "rule": "greedy",
        "selected": result["selected"],
        "cost_cents": result["cost_cents"],
        "budget_cents": 500_000_00,
    }
    assert result["selected"][0] == ids[1] and run.published_at is not None
    assert lifecycle.phase(reload(db, process)) == lifecycle.Phase.RESULTS
    with new_session(db.engine, write=True) as s:
        assert lifecycle.destroy_links(s, process=s.get(Process, process.id)) == 2
        s.commit()
    assert count(db, VoterLink, VoterLink.process_id == process.id) == 0
    assert log_entries(db, process, "links.destroyed")[0]["payload"] == {"links": 2}
    assert ballot_state(db, process) == (2, 0, 2)
    with new_session(db.engine) as s:
        assert (
            ballots.current_ballots(
                s, secret_key=voting_app.state.settings.secret_key, process=reload(db, process), voter=voter
            )
            == {}
        )


def test_timeline_states(db):
    now = utcnow()
    process = make_process(
        db,
        phase="voting",
        ideas_starts_at=now - dt.timedelta(days=60),
        review_starts_at=now - dt.timedelta(days=20),
        results_at=now + dt.timedelta(days=14),
    )
    steps = {s.key: s.state for s in lifecycle.timeline(reload(db, process))}
    assert steps == {"ideas": "done", "review": "done", "voting": "current", "results": "upcoming"}


# --- mitmachen voting ---------------------------------------------------------------------------------------


@pytest.fixture
def cli_env(db, monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", db.url)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SECRET_KEY", "test-secret-key-" + "x" * 32)


def test_cli_tick_closes_due_votes_and_tallies_with_a_progress_bar(
    db, voting_app, make_user, cli_env, capsys
):
    process = make_process(db, now=utcnow() - dt.timedelta(days=7, minutes=-1))
    ids = project_ids(db, process)
    cast(db, voting_app, process, make_user(), ids[:2])
    with new_session(db.engine, write=True) as s:  # the planned end passes
        row = s.get(Process, process.id)
        row.voting_ends_at = utcnow() - dt.timedelta(seconds=1)
        s.commit()
    assert voting_cli.main(["voting", "tick"]) == 0
    out, err = capsys.readouterr()
    assert f"process {process.id}: voting closed" in out and "selected" in out
    assert "100%" in err
    assert [r.status for r in query(db, TallyRun, TallyRun.process_id == process.id)] == ["done"]
    assert voting_cli.main(["voting", "tick"]) == 0  # nothing left to do


def test_cli_tally_and_publish(db, voting_app, make_user, cli_env, capsys):
    process = make_process(db, phase="closed")
    assert voting_cli.main(["voting", "tally", str(process.id), "--publish"]) == 0
    out, _err = capsys.readouterr()
    assert "results published" in out
    assert reload(db, process).results_published_at is not None
    assert voting_cli.main(["voting", "tally", str(process.id)]) == 2
    assert voting_cli.main(["voting", "tally", "999999"]) == 2
    open_vote = make_process(db)
    assert voting_cli.main(["voting", "tally", str(open_vote.id)]) == 2


def test_demo_is_idempotent_and_in_its_voting_phase(db, make_user):
    """The demo vote: fifteen projects, two district sub-budgets, open, with the demo accounts' ballots;
    loading it again adds nothing; without settings (the test database) it adds nothing at all."""
    from tests.conftest import make_settings
    from voting import demo
    from voting.models import Ballot

    for email in demo.DEMO_BALLOTS:
        make_user(email=email)
    settings = make_settings(db)
    with new_session(db.engine, write=True) as s:
        assert demo.load(s, None) == []
        done = demo.load(s, settings)
        s.commit()
    assert done[:2] == ["process buergerbudget-wuppertal-2027", "15 projects"]
    (process,) = query(db, Process, Process.slug == demo.SLUG)
    assert lifecycle.phase(process) == lifecycle.Phase.VOTING
    assert issues_of(db, process) == []
    assert len(query(db, Project, Project.process_id == process.id)) == 15
    ballots_cast = query(db, Ballot, Ballot.process_id == process.id)
    assert len(ballots_cast) == 6 and {b.scope for b in ballots_cast} == {
        0,
        district_id(db, "elberfeld"),
        district_id(db, "barmen"),
    }
    with new_session(db.engine, write=True) as s:
        assert demo.load(s, settings) == []
        s.commit()
    assert len(query(db, Process)) == 1
