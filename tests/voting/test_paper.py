"""Paper ballots (voting/paper.py and their staff pages): entered by one staff member, confirmed by a
second one (never the same person), then cast and logged as paper ballots; wrong entries are rejected and
never counted; a paper's number is entered once."""

from __future__ import annotations

import json

import pytest

from app.database import new_session
from app.models import Role, User
from tests.conftest import Client, query
from tests.voting.test_ballots import ballot_state, log_entries, make_process, mount_voting, project_ids
from voting import paper
from voting.models import Ballot, PaperBallot, Process


@pytest.fixture(autouse=True)
def _routes(app):
    mount_voting(app)


def enter(db, process, staff, selection, reference="A-0001", scope=0) -> PaperBallot:
    with new_session(db.engine, write=True) as s:
        row = paper.enter_paper(
            s,
            process=s.get(Process, process.id),
            staff=s.get(User, staff.id),
            scope=scope,
            polling_station="Rathaus Barmen",
            reference=reference,
            selection=selection,
        )
        s.commit()
        return row


def decide(db, process, staff, entry, action):
    with new_session(db.engine, write=True) as s:
        out = action(s, process=s.get(Process, process.id), staff=s.get(User, staff.id), paper_id=entry.id)
        s.commit()
        return out


def test_four_eyes_then_counted_as_paper(db, make_user):
    """An entry is not a ballot until a second person confirms it; then it is cast under a fresh ballot id,
    marked as paper in the data and in the log."""
    process = make_process(db)
    first, second = make_user(Role.STAFF), make_user(Role.ADMIN)
    ids = project_ids(db, process)
    entry = enter(db, process, first, [ids[2], ids[0]])
    assert ballot_state(db, process) == (0, 0, 0)
    with pytest.raises(paper.PaperError) as info:
        decide(db, process, first, entry, paper.confirm_paper)
    assert info.value.code == "same_person"
    assert ballot_state(db, process) == (0, 0, 0)

    ballot = decide(db, process, second, entry, paper.confirm_paper)
    assert ballot.is_paper and len(ballot.ballot_uid) == 32
    (stored,) = query(db, Ballot, Ballot.process_id == process.id)
    assert stored.is_paper and json.loads(stored.selection) == sorted([ids[0], ids[2]])
    (logged,) = log_entries(db, process, "ballot.cast")
    assert logged["payload"] == {
        "ballot": ballot.ballot_uid,
        "scope": 0,
        "selection": sorted([ids[0], ids[2]]),
        "version": 1,
        "paper": True,
    }
    (row,) = query(db, PaperBallot, PaperBallot.id == entry.id)
    assert row.confirmed_by_id == second.id and row.ballot_uid == ballot.ballot_uid
    assert ballot_state(db, process) == (1, 0, 1)  # no voter link: the paper is the voter's record
    with pytest.raises(paper.PaperError) as info:
        decide(db, process, make_user(Role.STAFF), entry, paper.confirm_paper)
    assert info.value.code == "done"


def test_rejected_entries_are_never_counted(db, make_user):
    process = make_process(db)
    first, second = make_user(Role.STAFF), make_user(Role.STAFF)
    ids = project_ids(db, process)
    entry = enter(db, process, first, [ids[1]])
    decide(db, process, second, entry, paper.reject_paper)
    with pytest.raises(paper.PaperError):
        decide(db, process, second, entry, paper.confirm_paper)
    assert ballot_state(db, process) == (0, 0, 0)
    again = enter(db, process, first, [ids[3]])  # the same paper can be entered again after a rejection
    decide(db, process, second, again, paper.confirm_paper)
    assert ballot_state(db, process) == (1, 0, 1)


def test_a_number_is_entered_once_and_selections_are_checked(db, make_user):
    process = make_process(db, ballot_type="knapsack", budget_cents=200_000_00)
    staff = make_user(Role.STAFF)
    ids = project_ids(db, process)
    enter(db, process, staff, [ids[0]], reference="W-17")
    with pytest.raises(paper.PaperError) as info:
        enter(db, process, staff, [ids[1]], reference="W-17")
    assert (info.value.code, info.value.field) == ("duplicate", "reference")
    with pytest.raises(paper.PaperError) as info:
        enter(db, process, staff, ids[:3], reference="W-18")
    assert (info.value.code, info.value.field) == ("invalid", "selection")
    assert len(query(db, PaperBallot, PaperBallot.process_id == process.id)) == 1


def test_paper_ballots_only_while_voting_is_open(db, make_user):
    staff = make_user(Role.STAFF)
    for phase in ("preparation", "closed"):
        process = make_process(db, phase=phase)
        with pytest.raises(paper.PaperError) as info:
            enter(db, process, staff, project_ids(db, process)[:1])
        assert info.value.code == "closed"


# --- the staff pages -----------------------------------------------------------------------------------------


def staff_client(app, login, user) -> Client:
    c = Client(app, base_url="http://testserver", follow_redirects=False)
    c.__enter__()
    login(user, c=c)
    return c


def test_paper_pages_enter_confirm_and_refuse_self_confirmation(db, app, make_user, login):
    """Over HTTP: staff A enters (field errors → 400, nothing written), cannot confirm their own entry
    (403); staff B confirms; the ballot counts as paper."""
    process = make_process(db)
    ids = project_ids(db, process)
    a, b = make_user(Role.STAFF, name="Anna Amt"), make_user(Role.STAFF, name="Bernd Büro")
    ca, cb = staff_client(app, login, a), staff_client(app, login, b)
    try:
        page = ca.get(f"/staff/processes/{process.id}/paper")
        assert page.status_code == 200 and 'id="f-polling_station"' in page.text
        bad = ca.post_form(
            f"/staff/processes/{process.id}/paper",
            {"scope": "0", "polling_station": "", "reference": "<b>", "project": [str(ids[0])]},
        )
        assert (
            bad.status_code == 400 and 'id="e-polling_station"' in bad.text and 'id="e-reference"' in bad.text
        )
        bad = ca.post_form(
            f"/staff/processes/{process.id}/paper",
            {"scope": "0", "polling_station": "Rathaus", "reference": "B-1", "project": ["x"]},
        )
        assert bad.status_code == 400 and 'id="e-selection"' in bad.text
        assert query(db, PaperBallot, PaperBallot.process_id == process.id) == []

        ok = ca.post_form(
            f"/staff/processes/{process.id}/paper",
            {
                "scope": "0",
                "polling_station": "Rathaus",
                "reference": "B-1",
                "project": [str(ids[0]), str(ids[4])],
            },
        )
        assert ok.status_code == 303
        (entry,) = query(db, PaperBallot, PaperBallot.process_id == process.id)
        listing = ca.get(f"/staff/processes/{process.id}/paper")
        assert "B-1" in listing.text and "zweite Person" in listing.text
        assert f"/paper/{entry.id}/confirm" not in listing.text

        own = ca.post_form(f"/staff/processes/{process.id}/paper/{entry.id}/confirm")
        assert own.status_code == 403
        assert ballot_state(db, process) == (0, 0, 0)

        assert f"/paper/{entry.id}/confirm" in cb.get(f"/staff/processes/{process.id}/paper").text
        done = cb.post_form(f"/staff/processes/{process.id}/paper/{entry.id}/confirm")
        assert done.status_code == 303
        (ballot,) = query(db, Ballot, Ballot.process_id == process.id)
        assert ballot.is_paper
        again = cb.post_form(f"/staff/processes/{process.id}/paper/{entry.id}/confirm")
        assert again.status_code == 400
        assert "bestätigt von Bernd Büro" in cb.get(f"/staff/processes/{process.id}/paper").text
        assert cb.post_form(f"/staff/processes/{process.id}/paper/999999/confirm").status_code == 404
    finally:
        ca.__exit__(None, None, None)
        cb.__exit__(None, None, None)
