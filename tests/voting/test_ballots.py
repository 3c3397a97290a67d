"""Casting ballots (voting/ballots.py): one ballot per resident and ballot, replacement with the last version
counting, every constraint re-checked by the server, eligibility, district ballots, secrecy of the log,
receipts. The factories at the top are shared by the other voting test modules."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from sqlalchemy import func, select

from app.database import new_session, utcnow
from app.models import User
from proposals.models import District, Theme
from tests.conftest import query
from voting import audit, ballots, lifecycle
from voting.merkle import verify_inclusion
from voting.models import Ballot, DistrictBudget, LogEntry, Process, Project, TallyRun, VoterLink

# --- shared factories (imported by the other voting test modules) ------------------------------------------


def mount_voting(app):
    """The voting routes on a test app (until app/main.py mounts them, then a no-op)."""
    from voting import routes as voting_routes

    paths = {getattr(r, "path", None) for r in app.router.routes}
    for route in voting_routes.routes:
        if route.path not in paths:
            app.router.routes.append(route)
    return app


@pytest.fixture
def voting_app(app):
    return mount_voting(app)


def secret_of(app) -> str:
    return app.state.settings.secret_key


def district_id(db, slug: str) -> int:
    with new_session(db.engine) as s:
        return s.execute(select(District.id).where(District.slug == slug)).scalar_one()


def theme_id(db, slug: str) -> int:
    with new_session(db.engine) as s:
        return s.execute(select(Theme.id).where(Theme.slug == slug)).scalar_one()


def set_district(db, user: User, slug: str | None) -> User:
    with new_session(db.engine) as s:
        row = s.get(User, user.id)
        row.district_id = district_id(db, slug) if slug else None
        s.add(row)
        s.commit()
        s.refresh(row)
        return row


def verify(db, user: User, *, method: str = "in_person", **attributes: Any) -> User:
    """Verify ``user`` as a resident (app/accounts/verification.py) with the given birth date/year and
    postal code, the way a letter code, an identity-verified sign-in or the citizen office does."""
    from app.accounts.verification import mark_verified

    with new_session(db.engine, write=True) as s:
        row = s.get(User, user.id)
        mark_verified(s, row, method=method, **attributes)
        s.commit()
        s.refresh(row)
        return row


APPROVAL_PROJECTS = [
    ("Radweg Talachse", 180_000_00, None, "mobilitaet-verkehr"),
    ("Stadtbäume", 120_000_00, None, "energie-umwelt"),
    ("Spielplätze", 95_000_00, None, "jugend-familie"),
    ("Bibliothek am Abend", 60_000_00, None, "bildung-kultur"),
    ("Nachbarschaftsfonds", 40_000_00, None, "gesellschaft-engagement"),
    ("Trinkbrunnen", 48_000_00, None, "gesundheit-pflege"),
    ("WLAN", 55_000_00, None, "it-infrastruktur-netze"),
    ("Beleuchtung", 75_000_00, None, "sicherheit-vertrauen"),
]


def make_process(
    db,
    *,
    ballot_type: str = "approval",
    projects: list[tuple[str, int | None, str | None, str | None]] | None = None,
    budget_cents: int = 500_000_00,
    district_budgets: dict[str, int] | None = None,
    phase: str = "voting",
    rule: str = "greedy",
    now: dt.datetime | None = None,
    **fields: Any,
) -> Process:
    """A process with projects (title, cost, district slug, theme slug) in ``phase``: "preparation",
    "voting" (opened), "closed" (closed, tally queued) or "results" (tallied and published)."""
    now = now or utcnow()
    projects = APPROVAL_PROJECTS if projects is None else projects
    values: dict[str, Any] = dict(
        slug=f"p-{now.timestamp()}-{len(query(db, Process))}",
        title="Bürgerbudget Test",
        budget_cents=budget_cents,
        ballot_type=ballot_type,
        rule=rule,
        has_district_ballots=bool(district_budgets),
        voting_starts_at=now - dt.timedelta(hours=1),
        voting_ends_at=now + dt.timedelta(days=7),
    )
    if ballot_type == "cumulative":
        values.update(points_total=10, points_per_project=5)
    values.update(fields)
    with new_session(db.engine, write=True) as s:
        process = Process(**values)
        s.add(process)
        s.flush()
        for slug, cents in (district_budgets or {}).items():
            s.add(
                DistrictBudget(process_id=process.id, district_id=district_id(db, slug), budget_cents=cents)
            )
        for position, (title, cost, district, theme) in enumerate(projects):
            s.add(
                Project(
                    process_id=process.id,
                    title=title,
                    cost_cents=cost,
                    district_id=district_id(db, district) if district else None,
                    theme_id=theme_id(db, theme) if theme else None,
                    position=position,
                )
            )
        s.flush()
        if phase in ("voting", "closed", "results"):
            lifecycle.open_voting(s, process=process, now=now)
        s.commit()
        s.refresh(process)
    if phase in ("closed", "results"):
        close(db, process, now=now + dt.timedelta(minutes=1))
    if phase == "results":
        lifecycle.run_tally(db.engine, process_id=process.id)
        with new_session(db.engine, write=True) as s:
            lifecycle.publish_results(s, process=s.get(Process, process.id))
            s.commit()
    return reload(db, process)


def close(db, process: Process, now: dt.datetime | None = None) -> None:
    with new_session(db.engine, write=True) as s:
        lifecycle.close_voting(s, process=s.get(Process, process.id), now=now)
        s.commit()


def reload(db, process: Process) -> Process:
    with new_session(db.engine) as s:
        return s.get(Process, process.id)


def project_ids(db, process: Process, scope: int = 0) -> list[int]:
    with new_session(db.engine) as s:
        return [p.id for p in lifecycle.get_scope(s, s.get(Process, process.id), scope).projects]


def cast(db, app, process: Process, user: User, selection: Any, scope: int = 0) -> ballots.CastResult:
    with new_session(db.engine, write=True) as s:
        result = ballots.cast_ballot(
            db=s,
            secret_key=secret_of(app),
            process=s.get(Process, process.id),
            voter=s.get(User, user.id),
            scope=scope,
            selection=selection,
        )
        s.commit()
        return result


def log_entries(db, process: Process, entry_type: str | None = None) -> list[dict]:
    with new_session(db.engine) as s:
        out = [audit.decode(e.entry) for e in audit.iter_entries(s, audit.process_log(process.id))]
    return [e for e in out if entry_type is None or e["type"] == entry_type]


def count(db, model, *where) -> int:
    with new_session(db.engine) as s:
        return s.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def ballot_state(db, process: Process) -> tuple[int, int, int]:
    """(ballots, voter links, ballot log entries) of a process."""
    log_id = audit.process_log(process.id)
    return (
        count(db, Ballot, Ballot.process_id == process.id),
        count(db, VoterLink, VoterLink.process_id == process.id),
        count(
            db,
            LogEntry,
            LogEntry.log_id == log_id,
            LogEntry.entry_type.in_(["ballot.cast", "ballot.replaced"]),
        ),
    )


# --- casting -----------------------------------------------------------------------------------------------


def test_cast_stores_ballot_link_and_log_entry(db, voting_app, make_user):
    """A ballot is stored and logged under a random id; the link holds a keyed hash, not the user id;
    neither the user id nor the e-mail address appears in the log (SECURITY.md ASVS V11.5.1)."""
    process = make_process(db)
    user = make_user(email="wähler@example.org")
    ids = project_ids(db, process)
    result = cast(db, voting_app, process, user, [ids[3], ids[1]])
    assert result.changed
    (ballot,) = query(db, Ballot, Ballot.process_id == process.id)
    assert len(ballot.ballot_uid) == 32 and int(ballot.ballot_uid, 16) >= 0
    assert json.loads(ballot.selection) == sorted([ids[1], ids[3]]) and ballot.version == 1
    (link,) = query(db, VoterLink, VoterLink.process_id == process.id)
    assert link.ballot_uid == ballot.ballot_uid and link.scope == 0
    assert link.voter_hash == ballots.voter_hash(secret_of(voting_app), process.id, user.id)
    assert str(user.id) != link.voter_hash
    (entry,) = log_entries(db, process, "ballot.cast")
    assert entry["payload"] == {
        "ballot": ballot.ballot_uid,
        "scope": 0,
        "selection": sorted([ids[1], ids[3]]),
        "version": 1,
        "paper": False,
    }
    assert ballot.log_index == entry["index"]
    with new_session(db.engine) as s:
        raw = b"".join(e.entry for e in audit.iter_entries(s, audit.process_log(process.id)))
    assert b"example.org" not in raw and b"w\xc3\xa4hler" not in raw


def test_voter_hash_is_keyed_per_process_and_secret():
    """The link hash changes with the process and with the app secret (a database copy alone reveals
    nothing)."""
    a = ballots.voter_hash("secret-a" * 5, 1, 42)
    assert a == ballots.voter_hash("secret-a" * 5, 1, 42)
    assert a != ballots.voter_hash("secret-a" * 5, 2, 42)
    assert a != ballots.voter_hash("secret-b" * 5, 1, 42)
    assert len(a) == 64


def test_changing_a_ballot_logs_replaced_and_the_last_version_counts(db, voting_app, make_user):
    """Changing the ballot keeps one ballot row and one link, bumps the version, logs ballot.replaced under
    the same ballot id; the stored selection is the last one."""
    process = make_process(db)
    user = make_user()
    ids = project_ids(db, process)
    first = cast(db, voting_app, process, user, [ids[0]])
    second = cast(db, voting_app, process, user, [ids[2], ids[4]])
    assert second.changed and second.ballot.ballot_uid == first.ballot.ballot_uid
    assert ballot_state(db, process) == (1, 1, 2)
    (ballot,) = query(db, Ballot, Ballot.process_id == process.id)
    assert ballot.version == 2 and json.loads(ballot.selection) == [ids[2], ids[4]]
    replaced = log_entries(db, process, "ballot.replaced")
    assert [e["payload"]["version"] for e in replaced] == [2]
    assert replaced[0]["payload"]["ballot"] == ballot.ballot_uid
    assert ballot.log_index == replaced[0]["index"]


def test_the_same_selection_again_changes_nothing(db, voting_app, make_user):
    """A double submit of the same selection logs nothing twice and returns the same receipt."""
    process = make_process(db)
    user = make_user()
    ids = project_ids(db, process)
    first = cast(db, voting_app, process, user, [ids[1], ids[0]])
    again = cast(db, voting_app, process, user, [ids[0], ids[1]])
    assert not again.changed and again.receipt["index"] == first.receipt["index"]
    assert ballot_state(db, process) == (1, 1, 1)


CASES = [
    # (ballot type, process fields, selection builder (ids -> selection), expected code)
    ("approval", {"max_choices": 3}, lambda ids: ids[:4], "too_many"),
    ("approval", {"min_choices": 2}, lambda ids: ids[:1], "too_few"),
    ("approval", {}, lambda ids: [], "empty"),
    ("approval", {}, lambda ids: [ids[0], ids[0]], "duplicate_project"),
    ("approval", {}, lambda ids: [ids[0], 999_999], "unknown_project"),
    ("approval", {}, lambda ids: {"1": 1}, "not_a_list"),
    ("approval", {}, lambda ids: ["x"], "bad_project_id"),
    ("approval", {}, lambda ids: [True], "bad_project_id"),
    ("knapsack", {}, lambda ids: ids[:4], "over_budget"),
    ("cumulative", {}, lambda ids: {str(ids[0]): 6}, "too_many_points_for_project"),
    ("cumulative", {}, lambda ids: {str(ids[0]): 5, str(ids[1]): 5, str(ids[2]): 1}, "too_many_points"),
    ("cumulative", {}, lambda ids: {str(ids[0]): -1}, "bad_points"),
    ("cumulative", {}, lambda ids: {str(ids[0]): "3"}, "bad_points"),
    ("cumulative", {}, lambda ids: [ids[0]], "not_an_object"),
    ("ranked", {"max_choices": 2}, lambda ids: ids[:3], "too_many"),
    ("ranked", {}, lambda ids: [ids[1], ids[1]], "duplicate_project"),
]


@pytest.mark.parametrize(("kind", "fields", "build", "code"), CASES)
def test_every_rule_is_checked_again_on_the_server(db, voting_app, make_user, kind, fields, build, code):
    """Bad selections of every ballot type are refused with a stable code and a message for the voter;
    nothing is written and nothing is logged (SECURITY.md V2.2.1, V2.3.3)."""
    process = make_process(db, ballot_type=kind, budget_cents=400_000_00, **fields)
    user = make_user()
    before = len(log_entries(db, process))
    with pytest.raises(ballots.BallotError) as info:
        cast(db, voting_app, process, user, build(project_ids(db, process)))
    assert info.value.code == "invalid" and info.value.selection.code == code
    assert str(info.value)
    assert ballot_state(db, process) == (0, 0, 0)
    assert len(log_entries(db, process)) == before


def test_projects_of_another_process_or_ballot_are_refused(db, voting_app, make_user):
    """A project of another process, or of another district's ballot, is not on this ballot."""
    process = make_process(
        db,
        projects=[("Stadtweit", 10_000_00, None, None), ("Elberfeld", 10_000_00, "elberfeld", None)],
        district_budgets={"elberfeld": 50_000_00},
    )
    other = make_process(db)
    user = set_district(db, make_user(), "elberfeld")
    elberfeld = district_id(db, "elberfeld")
    for selection, scope in (
        (project_ids(db, other)[:1], 0),
        (project_ids(db, process, elberfeld), 0),
        (project_ids(db, process, 0), elberfeld),
    ):
        with pytest.raises(ballots.BallotError) as info:
            cast(db, voting_app, process, user, selection, scope)
        assert info.value.selection.code == "unknown_project"
    assert ballot_state(db, process) == (0, 0, 0)


def test_a_closed_or_unopened_vote_refuses_ballots(db, voting_app, make_user):
    """Before opening and after closing (or after the planned end), no ballot is accepted."""
    user = make_user()
    for phase in ("preparation", "closed"):
        process = make_process(db, phase=phase)
        with pytest.raises(ballots.BallotError) as info:
            cast(db, voting_app, process, user, project_ids(db, process)[:1])
        assert info.value.code == "closed"
    past = make_process(db, now=utcnow() - dt.timedelta(days=8))
    with pytest.raises(ballots.BallotError) as info:
        cast(db, voting_app, past, user, project_ids(db, past)[:1])
    assert info.value.code == "closed"


def test_eligibility_rules(db, voting_app, make_user):
    """Verified residents only (a confirmed e-mail address is not enough), minimum age on the closing day
    from the verified birth date (refused with an explanation without one), eligible districts (profile
    district required)."""
    unverified = make_user()
    verified = verify(db, make_user(), birth_date=dt.date(1990, 5, 1), postal_code="42103")
    process = make_process(db, require_verified=True)
    assert ballots.eligibility_problems(process, unverified) == ["not_verified"]
    assert ballots.eligibility_problems(process, verified) == []
    with pytest.raises(ballots.BallotError) as info:
        cast(db, voting_app, process, unverified, project_ids(db, process)[:1])
    assert info.value.code == "ineligible"

    aged = make_process(db, min_age=16)
    assert ballots.eligibility_problems(aged, unverified) == ["age_unverified"]
    assert "16" in ballots.eligibility_message(aged, "age_unverified")
    closing = ballots.close_date(aged)
    young = verify(db, make_user(), birth_date=closing.replace(year=closing.year - 16) + dt.timedelta(days=1))
    assert ballots.eligibility_problems(aged, young) == ["too_young"]
    with pytest.raises(ballots.BallotError):
        cast(db, voting_app, aged, unverified, project_ids(db, aged)[:1])
    with pytest.raises(ballots.BallotError):
        cast(db, voting_app, aged, young, project_ids(db, aged)[:1])
    assert ballots.eligibility_problems(aged, verified) == []

    local = make_process(db, eligible_district_ids=str(district_id(db, "barmen")))
    assert ballots.eligibility_problems(local, verified) == ["district_missing"]
    assert ballots.eligibility_problems(local, set_district(db, make_user(), "elberfeld")) == [
        "district_not_eligible"
    ]
    barmer = set_district(db, make_user(), "barmen")
    assert ballots.eligibility_problems(local, barmer) == []
    assert cast(db, voting_app, local, barmer, project_ids(db, local)[:1]).changed
    assert ballot_state(db, aged)[0] == 0 and ballot_state(db, process)[0] == 0


def test_district_ballots(db, voting_app, make_user):
    """A resident votes in the city-wide ballot and in their district's; never in another district's, and
    not in a second district after changing the profile district."""
    process = make_process(
        db,
        projects=[
            ("Stadtweit A", 100_000_00, None, None),
            ("Elberfeld A", 20_000_00, "elberfeld", None),
            ("Barmen A", 20_000_00, "barmen", None),
        ],
        district_budgets={"elberfeld": 50_000_00, "barmen": 50_000_00},
    )
    elberfeld, barmen = district_id(db, "elberfeld"), district_id(db, "barmen")
    user = set_district(db, make_user(), "elberfeld")
    with new_session(db.engine) as s:
        assert [sc.id for sc in ballots.voter_scopes(s, reload(db, process), user)] == [0, elberfeld]
    cast(db, voting_app, process, user, project_ids(db, process, 0))
    cast(db, voting_app, process, user, project_ids(db, process, elberfeld), elberfeld)
    with pytest.raises(ballots.BallotError) as info:
        cast(db, voting_app, process, user, project_ids(db, process, barmen), barmen)
    assert info.value.code == "scope"
    moved = set_district(db, user, "barmen")
    with pytest.raises(ballots.BallotError) as info:
        cast(db, voting_app, process, moved, project_ids(db, process, barmen), barmen)
    assert info.value.code == "other_district"
    assert ballot_state(db, process) == (2, 2, 2)
    assert sorted(b.scope for b in query(db, Ballot, Ballot.process_id == process.id)) == [0, elberfeld]


def test_receipt_names_a_provable_log_entry(db, voting_app, make_user):
    """The receipt's leaf index and entry hash identify the logged ballot; the entry is provably in the
    tree of the receipt's head."""
    process = make_process(db)
    user = make_user()
    ids = project_ids(db, process)
    cast(db, voting_app, process, make_user(), ids[:2])
    receipt = cast(db, voting_app, process, user, ids[2:4]).receipt
    head = ballots.receipt_head(receipt)
    log_id = audit.process_log(process.id)
    with new_session(db.engine) as s:
        entry = s.execute(
            select(LogEntry).where(LogEntry.log_id == log_id, LogEntry.idx == receipt["index"])
        ).scalar_one()
        assert receipt["entry_hash"] == bytes(entry.leaf_hash).hex()
        assert audit.decode(entry.entry)["payload"]["ballot"] == receipt["ballot"]
        size = int(head["size"])
        proof = audit.prove_inclusion(s, log_id, receipt["index"], size)
        root = audit.root(s, log_id, size)
    assert verify_inclusion(entry.entry, receipt["index"], size, proof, root)
    assert head["root"] in (root.hex(), None) or isinstance(head["root"], str)
    with new_session(db.engine) as s:
        mine = ballots.current_ballots(
            s, secret_key=secret_of(voting_app), process=reload(db, process), voter=user
        )
    assert mine[0].ballot_uid == receipt["ballot"]


def test_current_receipt_is_the_receipt_of_the_current_ballot(db, voting_app, make_user):
    """The page after a cast reads the receipt in one statement: the same receipt ``receipt_for`` makes
    (a replaced ballot: its latest version, under the newest head); with no head covering the entry, it
    signs one, as ``receipt_for`` does; none for a voter without a ballot in that scope."""
    from voting import heads
    from voting.models import SignedTreeHead

    process = make_process(db)
    user, other = make_user(), make_user()
    ids = project_ids(db, process)
    cast(db, voting_app, process, user, ids[:1])
    cast(db, voting_app, process, user, ids[1:3])  # replaced: version 2
    cast(db, voting_app, process, other, ids[:2])  # a newer head than the user's own
    secret = secret_of(voting_app)

    def both(s):
        fresh = reload(db, process)
        mine = ballots.current_ballots(s, secret_key=secret, process=fresh, voter=user)[0]
        one = ballots.current_receipt(s, secret_key=secret, process=fresh, voter=user, scope=0)
        return one, ballots.receipt_for(s, process=fresh, ballot=mine)

    with new_session(db.engine) as s:
        one, reference = both(s)
        assert one == reference
        assert one["version"] == 2 and one["head"]["size"] == audit.size(s, audit.process_log(process.id))
        assert (
            ballots.current_receipt(s, secret_key=secret, process=reload(db, process), voter=user, scope=7)
            is None
        )
        assert (
            ballots.current_receipt(
                s, secret_key=secret, process=reload(db, process), voter=make_user(), scope=0
            )
            is None
        )
    with new_session(db.engine, write=True) as s:
        s.execute(SignedTreeHead.__table__.delete())
        one, reference = both(s)
        assert one == reference and one["head"]["reason"] == "receipt"
        assert heads.count_heads(s, audit.process_log(process.id)) == 1  # signed once, then reused
        s.commit()


def test_no_ballot_without_tally_run_leak(db, voting_app, make_user):
    """Ballot rows hold no voter reference at all (columns), and tally runs are queued only at close."""
    assert not {"user_id", "voter_id", "voter_hash"} & set(Ballot.__table__.columns.keys())
    process = make_process(db)
    cast(db, voting_app, process, make_user(), project_ids(db, process)[:1])
    assert count(db, TallyRun, TallyRun.process_id == process.id) == 0
