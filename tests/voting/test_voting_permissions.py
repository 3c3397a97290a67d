"""The voting permission matrix (STYLE.md practice 5): role (anonymous, resident, resident of another
district, moderator, staff, admin) × phase (before, during, after voting) × action (cast in the city-wide and
in a district ballot, enter and confirm paper ballots, the staff lifecycle page and steps), over HTTP, plus the
named predicates themselves. SECURITY.md: CVE-2023-36465 (every admin route × role), CVE-2026-40869
(object-level checks: four eyes on paper ballots)."""

from __future__ import annotations

import json

import pytest

from app.database import new_session
from app.models import Role
from app.permissions import can_user
from tests.voting.test_ballots import (
    APPROVAL_PROJECTS,
    district_id,
    make_process,
    mount_voting,
    project_ids,
    set_district,
)
from voting.models import PaperBallot
from voting.permissions import CastTarget, PaperTarget

ROLES = ["anonymous", "resident", "other_district", "moderator", "staff", "admin"]
PHASES = {"before": "preparation", "during": "voting", "after": "closed"}
ACTIONS = ["cast_city", "cast_district", "paper_enter", "paper_confirm", "staff_page", "step", "wrong_step"]
STEP = {"before": "open", "during": "close", "after": "tally"}
WRONG_STEP = {"before": "close", "during": "open", "after": "open"}
LOGIN = "login"


def expected(role: str, phase: str, action: str) -> int | str:
    if role == "anonymous":
        return LOGIN
    staff = role in ("staff", "admin")
    during = phase == "during"
    if action == "cast_city":
        return 303 if during else 403
    if action == "cast_district":
        return 303 if during and role == "resident" else 403
    if action in ("paper_enter", "paper_confirm"):
        return 303 if staff and during else 403
    if action == "staff_page":
        return 200 if staff else 403
    if action == "step":
        return 303 if staff else 403
    if action == "wrong_step":
        return 400 if staff else 403
    raise AssertionError(action)


@pytest.fixture(autouse=True)
def _routes(app):
    mount_voting(app)


def _setup(db, make_user, role: str, phase: str):
    process = make_process(
        db,
        phase=PHASES[phase],
        projects=[*APPROVAL_PROJECTS, ("Elberfeld", 20_000_00, "elberfeld", None)],
        district_budgets={"elberfeld": 50_000_00},
    )
    enterer = make_user(Role.STAFF, name="Third Person")
    elberfeld = district_id(db, "elberfeld")
    with new_session(db.engine, write=True) as s:
        entry = PaperBallot(
            process_id=process.id,
            scope=0,
            polling_station="Rathaus",
            reference="X-1",
            selection=json.dumps(project_ids(db, process)[:1]),
            entered_by_id=enterer.id,
        )
        s.add(entry)
        s.commit()
        s.refresh(entry)
    user = None
    if role != "anonymous":
        role_value = {"resident": Role.RESIDENT, "other_district": Role.RESIDENT}.get(role, role)
        user = make_user(role_value)
        if role == "resident":
            user = set_district(db, user, "elberfeld")
        elif role == "other_district":
            user = set_district(db, user, "barmen")
    return process, entry, elberfeld, user


def _request(client, db, process, entry, elberfeld, phase: str, action: str):
    pid = process.id
    if action == "cast_city":
        data = {"scope": "0", "selection": json.dumps(project_ids(db, process)[:1])}
        return client.post_form(f"/processes/{pid}/ballot/cast", data)
    if action == "cast_district":
        data = {"scope": str(elberfeld), "selection": json.dumps(project_ids(db, process, elberfeld))}
        return client.post_form(f"/processes/{pid}/ballot/cast", data)
    if action == "paper_enter":
        data = {
            "scope": "0",
            "polling_station": "Rathaus",
            "reference": "Y-2",
            "project": [str(project_ids(db, process)[1])],
        }
        return client.post_form(f"/staff/processes/{pid}/paper", data)
    if action == "paper_confirm":
        return client.post_form(f"/staff/processes/{pid}/paper/{entry.id}/confirm")
    if action == "staff_page":
        return client.get(f"/staff/processes/{pid}/voting")
    if action == "step":
        return client.post_form(f"/staff/processes/{pid}/voting/{STEP[phase]}")
    if action == "wrong_step":
        return client.post_form(f"/staff/processes/{pid}/voting/{WRONG_STEP[phase]}")
    raise AssertionError(action)


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("phase", list(PHASES))
@pytest.mark.parametrize("role", ROLES)
def test_matrix(db, client, make_user, login, role, phase, action):
    """Each (role, phase, action) gets exactly the expected answer: the action (303/200), a refusal (403),
    a wrong-phase error (400), or the login page for anonymous visitors."""
    process, entry, elberfeld, user = _setup(db, make_user, role, phase)
    if user is not None:
        login(user)
    response = _request(client, db, process, entry, elberfeld, phase, action)
    want = expected(role, phase, action)
    if want == LOGIN:
        assert response.status_code == 303 and response.headers["location"].startswith("/login?next=")
    else:
        assert response.status_code == want, (role, phase, action, response.text[:300])


def test_predicates_directly(db, make_user):
    """The named permissions answer the same questions in templates (``can``) as in routes."""
    during = make_process(
        db,
        projects=[*APPROVAL_PROJECTS, ("E", 1_00, "elberfeld", None)],
        district_budgets={"elberfeld": 10_00},
    )
    before = make_process(db, phase="preparation")
    elberfeld = district_id(db, "elberfeld")
    resident = set_district(db, make_user(), "elberfeld")
    other = set_district(db, make_user(), "barmen")
    staff, admin, moderator = make_user(Role.STAFF), make_user(Role.ADMIN), make_user(Role.MODERATOR)
    entry = PaperBallot(
        process_id=during.id, polling_station="x", reference="1", selection="[1]", entered_by_id=staff.id
    )

    assert can_user(resident, "voting.cast", CastTarget(during, elberfeld))
    assert not can_user(other, "voting.cast", CastTarget(during, elberfeld))
    assert can_user(other, "voting.cast", CastTarget(during, 0))
    assert not can_user(resident, "voting.cast", CastTarget(before, 0))
    assert not can_user(None, "voting.cast", CastTarget(during, 0))
    for name in ("voting.manage", "voting.paper.enter", "voting.paper.confirm"):
        assert not can_user(resident, name, during) and not can_user(moderator, name, during)
        assert not can_user(None, name, during)
    assert can_user(staff, "voting.manage", before) and can_user(admin, "voting.manage", during)
    assert can_user(staff, "voting.paper.enter", during) and not can_user(staff, "voting.paper.enter", before)
    assert not can_user(staff, "voting.paper.confirm", PaperTarget(during, entry))  # four eyes
    assert can_user(admin, "voting.paper.confirm", PaperTarget(during, entry))
    assert not can_user(admin, "voting.paper.confirm", PaperTarget(before, entry))


def test_suspended_account_cannot_vote(db, make_user):
    from datetime import timedelta

    from app.database import utcnow

    process = make_process(db)
    user = make_user()
    user.suspended_until = utcnow() + timedelta(days=1)
    assert not can_user(user, "voting.cast", CastTarget(process, 0))
