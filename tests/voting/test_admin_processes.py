"""Council staff administer processes and projects over HTTP (voting/admin_routes.py): create and edit a
process (euros → cents, district sub-budgets, eligibility, dates), projects by hand and from accepted
proposals, edits refused after the freeze, the pre-flight list, the permission matrix of every staff route
and unknown ids (404). The helpers at the top are shared by the other staff test modules."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from app.database import new_session, utcnow
from app.models import Role
from tests.conftest import query
from tests.proposals.factories import make_proposal
from tests.voting.test_ballots import district_id, make_process, mount_voting, reload, theme_id
from voting import admin_routes
from voting.admin_services import parse_euros
from voting.models import DistrictBudget, Process, Project

# --- shared helpers ----------------------------------------------------------------------------------------


def mount_staff(app):
    """The voting and staff routes on a test app (until app/main.py mounts them, then a no-op)."""
    mount_voting(app)
    paths = {getattr(r, "path", None) for r in app.router.routes}
    for route in admin_routes.routes:
        if route.path not in paths:
            app.router.routes.insert(0, route)
    return app


@pytest.fixture
def staff_app(app):
    return mount_staff(app)


@pytest.fixture
def staff(make_user, login, staff_app):
    user = make_user(Role.STAFF, email="amt@example.org", name="Stadtkämmerei")
    login(user)
    return user


def process_form(db, **overrides) -> dict:
    data = {
        "title": "Bürgerbudget Wuppertal 2027",
        "description": "Ideen für **alle** Stadtbezirke.",
        "budget": "500.000,00",
        "ballot_type": "approval",
        "min_choices": "1",
        "max_choices": "5",
        "points_total": "",
        "points_per_project": "",
        "rule": "greedy",
        "min_age": "14",
        "ideas_starts_at": "2027-01-10T09:00",
        "review_starts_at": "2027-03-01T09:00",
        "voting_starts_at": "2027-05-01T09:00",
        "voting_ends_at": "2027-05-31T18:00",
        "results_at": "2027-06-15T12:00",
    }
    data.update(overrides)
    return data


# --- money parsing ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,cents",
    [
        ("500000", 500_000_00),
        ("500.000", 500_000_00),
        ("500.000,50", 500_000_50),
        ("1,234.56", 1_234_56),
        ("1234,5", 1_234_50),
        ("12.5", 12_50),
        ("€ 99", 99_00),
        ("-3", -3_00),
    ],
)
def test_parse_euros(text, cents):
    """Euro amounts in German and English notation become exact integer cents."""
    assert parse_euros(text) == cents


@pytest.mark.parametrize("text", ["", "abc", "1.2.3", "12,345,6", "1e5", "12.345.67,8,9", "1.005"])
def test_parse_euros_refuses_garbage(text):
    """Anything that is not clearly an amount is refused (never guessed)."""
    if text == "1.005":  # a German thousands separator: 1005 euros
        assert parse_euros(text) == 1005_00
        return
    with pytest.raises(ValueError):
        parse_euros(text)


# --- processes -----------------------------------------------------------------------------------------------


def test_staff_creates_a_process_with_sub_budgets_eligibility_and_timeline(db, client, staff):
    """Creating a process stores cents, sanitised description, sub-budgets, eligibility and UTC dates."""
    elberfeld, barmen = district_id(db, "elberfeld"), district_id(db, "barmen")
    data = process_form(
        db,
        has_district_ballots="on",
        require_verified="on",
        **{f"district_budget_{elberfeld}": "50.000", f"district_budget_{barmen}": "40000,00"},
    )
    data["eligible_districts"] = [str(elberfeld), str(barmen)]
    data["description"] = "Hallo <script>alert(1)</script> **Welt**"
    r = client.post_form("/staff/processes/new", data)
    assert r.status_code == 303, r.text
    process = query(db, Process)[0]
    assert r.headers["location"] == f"/staff/processes/{process.id}/projects"
    assert process.budget_cents == 500_000_00
    assert process.min_choices == 1 and process.max_choices == 5 and process.min_age == 14
    assert process.require_verified and process.has_district_ballots
    assert process.eligible_district_ids == ",".join(str(x) for x in sorted([elberfeld, barmen]))
    assert "<script" not in process.description_html and "<strong>Welt</strong>" in process.description_html
    assert process.voting_starts_at.astimezone(dt.UTC) == dt.datetime(2027, 5, 1, 7, 0, tzinfo=dt.UTC)
    budgets = {b.district_id: b.budget_cents for b in query(db, DistrictBudget)}
    assert budgets == {elberfeld: 50_000_00, barmen: 40_000_00}
    page = client.get(f"/staff/processes/{process.id}/edit")
    assert page.status_code == 200
    assert 'class="timeline"' in page.text and "2027-05-01T09:00" in page.text
    assert 'value="50000"' in page.text


@pytest.mark.parametrize(
    "overrides,field",
    [
        ({"title": ""}, "title"),
        ({"budget": "-5"}, "budget"),
        ({"budget": "viel"}, "budget"),
        ({"budget": "0"}, "budget"),
        ({"ballot_type": "lottery"}, "ballot_type"),
        ({"rule": "dictator"}, "rule"),
        ({"min_choices": "3", "max_choices": "2"}, "max_choices"),
        ({"voting_ends_at": "2027-04-01T09:00"}, "voting_ends_at"),
        ({"voting_starts_at": "morgen"}, "voting_starts_at"),
        ({"ballot_type": "ranked", "rule": "mes"}, "rule"),
        ({"ballot_type": "cumulative"}, "points_total"),
        ({"has_district_ballots": "on"}, "has_district_ballots"),
        ({"min_age": "200"}, "min_age"),
    ],
)
def test_bad_process_input_is_refused_with_field_errors(db, client, staff, overrides, field):
    """Invalid input: 400, the error next to its field, nothing written."""
    r = client.post_form("/staff/processes/new", process_form(db, **overrides))
    assert r.status_code == 400
    assert f'id="e-{field}"' in r.text
    assert query(db, Process) == []


def test_editing_after_the_freeze_keeps_the_ballot_fixed(db, client, staff):
    """After the freeze the budget and ballot are fixed (400, unchanged); the title may still change."""
    process = make_process(db, phase="voting")
    r = client.post_form(f"/staff/processes/{process.id}/edit", process_form(db, budget="1"))
    assert r.status_code == 400
    assert reload(db, process).budget_cents == 500_000_00
    data = process_form(db, title="Bürgerbudget 2027 (neu)", budget="500000", min_choices="0", max_choices="")
    data.update(
        ballot_type="approval",
        min_age="",
        ideas_starts_at="",
        review_starts_at="",
        results_at="",
        voting_starts_at=client.get(f"/staff/processes/{process.id}/edit")
        .text.split('id="f-voting_starts_at"')[1]
        .split('value="')[1]
        .split('"')[0],
        voting_ends_at=client.get(f"/staff/processes/{process.id}/edit")
        .text.split('id="f-voting_ends_at"')[1]
        .split('value="')[1]
        .split('"')[0],
    )
    r = client.post_form(f"/staff/processes/{process.id}/edit", data)
    assert r.status_code == 303, r.text
    assert reload(db, process).title == "Bürgerbudget 2027 (neu)"


def test_editing_before_the_freeze_changes_everything(db, client, staff):
    """Before the freeze every setting may change, including the sub-budgets (replaced)."""
    process = make_process(db, phase="preparation")
    barmen = district_id(db, "barmen")
    data = process_form(
        db, budget="250000", has_district_ballots="on", **{f"district_budget_{barmen}": "10000"}
    )
    r = client.post_form(f"/staff/processes/{process.id}/edit", data)
    assert r.status_code == 303, r.text
    process = reload(db, process)
    assert process.budget_cents == 250_000_00 and process.max_choices == 5
    assert [(b.district_id, b.budget_cents) for b in query(db, DistrictBudget)] == [(barmen, 10_000_00)]


# --- projects ------------------------------------------------------------------------------------------------


def test_projects_by_hand_edit_and_delete(db, client, staff):
    """Staff add a project (cost in euros, theme, district, notes), edit it and remove it."""
    process = make_process(db, phase="preparation", projects=[])
    theme, district = theme_id(db, "energie-umwelt"), district_id(db, "barmen")
    r = client.post_form(
        f"/staff/processes/{process.id}/projects",
        {
            "title": "Blühwiesen <b>Barmen</b>",
            "description": "Mehr *Insekten*",
            "cost": "12.500,50",
            "theme": str(theme),
            "district": str(district),
            "feasibility_notes": "Grünflächenamt: machbar",
        },
    )
    assert r.status_code == 303, r.text
    project = query(db, Project)[0]
    assert project.cost_cents == 12_500_50 and project.theme_id == theme and project.district_id == district
    assert (
        project.feasibility_notes == "Grünflächenamt: machbar"
        and "<em>Insekten</em>" in project.description_html
    )
    page = client.get(f"/staff/processes/{process.id}/projects")
    assert "Blühwiesen &lt;b&gt;Barmen&lt;/b&gt;" in page.text
    r = client.post_form(
        f"/staff/processes/{process.id}/projects/{project.id}/edit",
        {
            "title": "Blühwiesen",
            "cost": "13000",
            "theme": "",
            "district": "",
            "description": "",
            "feasibility_notes": "",
        },
    )
    assert r.status_code == 303
    project = query(db, Project)[0]
    assert (project.title, project.cost_cents, project.theme_id, project.district_id) == (
        "Blühwiesen",
        13_000_00,
        None,
        None,
    )
    r = client.post_form(f"/staff/processes/{process.id}/projects/{project.id}/delete")
    assert r.status_code == 303 and query(db, Project) == []


@pytest.mark.parametrize(
    "field,value", [("cost", "-100"), ("cost", "teuer"), ("title", ""), ("theme", "99999"), ("district", "x")]
)
def test_bad_project_input(db, client, staff, field, value):
    """A bad project field: 400 with the error next to it; nothing written."""
    process = make_process(db, phase="preparation", projects=[])
    data = {
        "title": "Bänke",
        "cost": "1000",
        "theme": "",
        "district": "",
        "description": "",
        "feasibility_notes": "",
    }
    data[field] = value
    r = client.post_form(f"/staff/processes/{process.id}/projects", data)
    assert r.status_code == 400 and f'id="e-{field}"' in r.text
    assert query(db, Project) == []


def test_project_from_an_accepted_proposal_with_one_click(db, client, staff, make_user):
    """An accepted proposal becomes a project (title, text, cost, theme, district) once; others are refused."""
    author = make_user()
    process = make_process(db, phase="preparation", projects=[])
    accepted = make_proposal(
        db,
        author,
        status="accepted",
        cost_cents=8_000_00,
        district_id=district_id(db, "vohwinkel"),
        title="Bänke",
    )
    published = make_proposal(db, author, status="published", title="Noch offen")
    page = client.get(f"/staff/processes/{process.id}/projects")
    assert "Bänke" in page.text and "Noch offen" not in page.text
    r = client.post_form(
        f"/staff/processes/{process.id}/projects/from-proposal", {"proposal_id": str(accepted.id)}
    )
    assert r.status_code == 303
    (project,) = query(db, Project)
    assert (project.proposal_id, project.title, project.cost_cents) == (accepted.id, "Bänke", 8_000_00)
    assert project.district_id == district_id(db, "vohwinkel") and project.theme_id == accepted.theme_id
    for pid in (accepted.id, published.id, 999_999):
        r = client.post_form(
            f"/staff/processes/{process.id}/projects/from-proposal", {"proposal_id": str(pid)}
        )
        assert r.status_code == 400
    assert len(query(db, Project)) == 1


def test_projects_cannot_change_after_the_freeze(db, client, staff, make_user):
    """Adding, editing, deleting and one-click creation are all refused once the list is frozen."""
    process = make_process(db, phase="voting")
    project = query(db, Project)[0]
    base = f"/staff/processes/{process.id}/projects"
    data = {
        "title": "Neu",
        "cost": "1000",
        "theme": "",
        "district": "",
        "description": "",
        "feasibility_notes": "",
    }
    assert client.post_form(base, data).status_code == 400
    assert client.post_form(f"{base}/{project.id}/edit", data).status_code == 400
    assert client.post_form(f"{base}/{project.id}/delete").status_code == 400
    proposal = make_proposal(db, make_user(), status="accepted")
    assert client.post_form(f"{base}/from-proposal", {"proposal_id": str(proposal.id)}).status_code == 400
    assert len(query(db, Project)) == 8 and reload(db, process).projects_hash
    with new_session(db.engine) as s:
        assert s.get(Project, project.id).title == project.title


def test_preflight_lists_the_issues(db, client, staff):
    """The pre-flight page lists what stops the vote from opening."""
    process = make_process(db, phase="preparation", projects=[("Ohne Kosten", None, None, None)])
    page = client.get(f"/staff/processes/{process.id}/preflight")
    assert page.status_code == 200 and 'data-code="project_without_cost"' in page.text
    ok = make_process(db, phase="preparation", voting_starts_at=utcnow() + dt.timedelta(days=1))
    assert 'data-code="' not in client.get(f"/staff/processes/{ok.id}/preflight").text


# --- permissions and unknown ids -----------------------------------------------------------------------------

GET_ROUTES = [
    "/staff",
    "/staff/processes",
    "/staff/processes/new",
    "/staff/processes/import-pb",
    "/staff/processes/{id}/edit",
    "/staff/processes/{id}/projects",
    "/staff/processes/{id}/projects/{project}/edit",
    "/staff/processes/{id}/preflight",
    "/staff/processes/{id}/compare",
    "/staff/processes/{id}/export.csv",
    "/staff/processes/{id}/export.xlsx",
    "/staff/processes/{id}/export.json",
    "/staff/processes/{id}/export.pb",
    "/staff/exports",
    "/staff/exports/proposals.csv",
    "/staff/exports/proposals.xlsx",
    "/staff/exports/comments.csv",
    "/staff/exports/comments.xlsx",
    "/staff/statistics",
]
POST_ROUTES = [
    "/staff/processes/new",
    "/staff/processes/import-pb",
    "/staff/processes/{id}/edit",
    "/staff/processes/{id}/projects",
    "/staff/processes/{id}/projects/import",
    "/staff/processes/{id}/projects/from-proposal",
    "/staff/processes/{id}/projects/{project}/edit",
    "/staff/processes/{id}/projects/{project}/delete",
]


@pytest.mark.parametrize("role", [None, Role.RESIDENT, Role.MODERATOR, Role.STAFF, Role.ADMIN])
def test_permission_matrix(db, client, staff_app, make_user, login, role):
    """SECURITY.md V4.1: every staff route: anonymous → login, residents and moderators → 403, staff and
    admins → 200; POSTs by others write nothing."""
    process = make_process(db, phase="results")
    project = query(db, Project)[0]
    if role is not None:
        login(make_user(role))
    for template in GET_ROUTES:
        path = template.format(id=process.id, project=project.id)
        r = client.get(path)
        if role is None:
            assert r.status_code == 303 and "/login" in r.headers["location"], path
        elif role in (Role.RESIDENT, Role.MODERATOR):
            assert r.status_code == 403, path
        else:
            assert r.status_code == 200, (path, r.status_code)
    if role in (Role.STAFF, Role.ADMIN):
        return
    token = client.csrf("/")
    before = (len(query(db, Process)), len(query(db, Project)))
    for template in POST_ROUTES:
        path = template.format(id=process.id, project=project.id)
        r = client.post(path, data={"csrf_token": token, "title": "x" * 10, "cost": "1", "proposal_id": "1"})
        assert r.status_code == (303 if role is None else 403), path
    assert (len(query(db, Process)), len(query(db, Project))) == before


def test_unknown_ids_are_404(db, client, staff, make_user):
    """IDOR: unknown processes and projects of another process are 404, never another object."""
    process = make_process(db, phase="preparation")
    other = make_process(db, phase="preparation")
    foreign = query(db, Project, Project.process_id == other.id)[0]
    for path in [
        "/staff/processes/999999/edit",
        "/staff/processes/999999/projects",
        "/staff/processes/999999/preflight",
        "/staff/processes/999999/compare",
        "/staff/processes/999999/export.csv",
        "/processes/999999/results",
        "/processes/999999/export.pb",
        f"/staff/processes/{process.id}/projects/{foreign.id}/edit",
        f"/staff/processes/{process.id}/export.doc",
        f"/staff/processes/{process.id}/export.pb?scope=12345",
        "/staff/exports/users.csv",
        "/staff/processes/99999999999999999999999/edit",
        "/processes/99999999999999999999999/results",
    ]:
        assert client.get(path).status_code == 404, path
    r = client.post_form(f"/staff/processes/{process.id}/projects/{foreign.id}/delete")
    assert r.status_code == 404
    for query_string in ("theme=99999999999999999999", "district=9999999999", "theme=-1"):
        assert client.get(f"/staff/exports/proposals.csv?{query_string}").status_code == 400
    with new_session(db.engine) as s:
        assert s.execute(select(Project.id).where(Project.id == foreign.id)).first() is not None
