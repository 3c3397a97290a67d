"""The permission matrix: role (anonymous, resident, author, moderator, staff, admin) × action (create, edit,
publish, withdraw, review, support, follow, attach, delete an attachment), over HTTP, and the named
permissions by lifecycle status. Object-level checks on every route (CVE-2026-40869, CVE-2023-36465)."""

from __future__ import annotations

import pytest

from app.models import User
from app.permissions import PERMISSIONS, can_user
from proposals.models import Attachment, Follow, Proposal, ProposalStatus, Support
from tests.conftest import query
from tests.proposals.proposal_helpers import form_data, get, make_proposal, png_bytes

ROLES = ["anonymous", "resident", "author", "moderator", "staff", "admin"]
OK, LOGIN, FORBIDDEN, NOT_FOUND = "ok", "login", 403, 404


@pytest.fixture
def settings_overrides(tmp_path):
    return {"data_dir": str(tmp_path / "data")}


@pytest.fixture
def world(db, make_user, client, login):
    """An author with a published proposal (with an attachment) and a draft; one account per role."""
    users = {role: make_user(role) for role in ("resident", "moderator", "staff", "admin")}
    users["author"] = author = make_user()
    login(author)
    token = client.csrf()
    response = client.post(
        "/proposals/new",
        data={**form_data(db), "csrf_token": token, "action": "publish"},
        files=[("attachments", ("bild.png", png_bytes(), "image/png"))],
    )
    assert response.status_code == 303
    published = query(db, Proposal)[0]
    draft = make_proposal(db, author, status="draft", title="Ein Entwurf der Autorin")
    client.post_form("/logout")
    client.cookies.clear()
    return {"users": users, "published": published, "draft": draft, "attachment": query(db, Attachment)[0]}


def _act(client, db, world, action: str):
    p, d, a = world["published"], world["draft"], world["attachment"]
    if action == "create":
        return client.post_form(
            "/proposals/new", {**form_data(db, title="Ein ganz neuer Vorschlag"), "action": "publish"}
        )
    if action == "edit":
        return client.post_form(f"/proposals/{p.id}/edit", form_data(db, title="Von jemandem geändert"))
    if action == "publish":
        return client.post_form(f"/proposals/{d.id}/publish")
    if action == "withdraw":
        return client.post_form(f"/proposals/{p.id}/withdraw", {"reason": ""})
    if action == "review":
        return client.post_form(f"/proposals/{p.id}/status", {"to": "under_review", "reason": "Prüfung"})
    if action == "support":
        return client.post_form(f"/proposals/{p.id}/support")
    if action == "follow":
        return client.post_form(f"/proposals/{p.id}/follow")
    if action == "attach":
        token = client.csrf()
        return client.post(
            f"/proposals/{p.id}/edit",
            data={**form_data(db), "csrf_token": token},
            files=[("attachments", ("neu.png", png_bytes(), "image/png"))],
        )
    if action == "delete_attachment":
        return client.post_form(f"/proposals/{p.id}/attachments/{a.id}/delete")
    raise AssertionError(action)


def _changed(db, world, action: str, user: User | None) -> bool:
    p, d = world["published"], world["draft"]
    if action == "create":
        return len(query(db, Proposal)) == 3
    if action == "edit":
        return get(db, p.id).title == "Von jemandem geändert"
    if action == "publish":
        return get(db, d.id).status == ProposalStatus.PUBLISHED
    if action == "withdraw":
        return get(db, p.id).status == ProposalStatus.WITHDRAWN
    if action == "review":
        return get(db, p.id).status == ProposalStatus.UNDER_REVIEW
    if action == "support":
        return len(query(db, Support)) == 1
    if action == "follow":
        return (
            user is not None
            and len(query(db, Follow, Follow.user_id == user.id, Follow.proposal_id == p.id)) == 1
        )
    if action == "attach":
        return len(query(db, Attachment)) == 2
    if action == "delete_attachment":
        return query(db, Attachment) == []
    raise AssertionError(action)


EXPECTED = {
    #                    anonymous  resident   author     moderator  staff      admin
    "create": (LOGIN, OK, OK, OK, OK, OK),
    "edit": (LOGIN, FORBIDDEN, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "publish": (NOT_FOUND, NOT_FOUND, OK, FORBIDDEN, NOT_FOUND, FORBIDDEN),
    "withdraw": (LOGIN, FORBIDDEN, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "review": (LOGIN, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK, OK),
    "support": (LOGIN, OK, FORBIDDEN, OK, OK, OK),
    "follow": (LOGIN, OK, OK, OK, OK, OK),
    "attach": (LOGIN, FORBIDDEN, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "delete_attachment": (LOGIN, FORBIDDEN, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN),
}
CASES = [(action, role, want[i]) for action, want in EXPECTED.items() for i, role in enumerate(ROLES)]


@pytest.mark.parametrize(("action", "role", "expected"), CASES, ids=[f"{a}-{r}" for a, r, _ in CASES])
def test_permission_matrix(client, db, login, world, action, role, expected):
    """Every action × every role over HTTP: allowed → done (303, state changed); anonymous → login page;
    not allowed → 403, or 404 where the proposal is not even visible (someone else's draft); nothing
    changes unless allowed. The "author" follows automatically, so "follow" is checked by the row."""
    user = None if role == "anonymous" else world["users"][role]
    if user is not None:
        login(user)
    if action == "follow" and role == "author":
        client.post_form(f"/proposals/{world['published'].id}/unfollow")
    response = _act(client, db, world, action)
    if expected == OK:
        assert response.status_code == 303, response.text[:500]
        assert not response.headers["location"].startswith("/login")
        assert _changed(db, world, action, user)
    elif expected == LOGIN:
        assert response.status_code == 303 and response.headers["location"].startswith("/login?next=")
        assert not _changed(db, world, action, user)
    else:
        assert response.status_code == expected
        assert not _changed(db, world, action, user)


GET_PAGES = {
    # path template: roles that get 200 (others: 403, anonymous → login)
    "/proposals/{p}/edit": {"author"},
    "/proposals/{p}/withdraw": {"author"},
    "/proposals/{p}/status": {"staff", "admin"},
    "/proposals/{p}/attachments/{a}/delete": {"author"},
    "/proposals/review": {"staff", "admin"},
    "/proposals/new": {"resident", "author", "moderator", "staff", "admin"},
}


@pytest.mark.parametrize("role", ROLES)
def test_get_pages_role_matrix(client, login, world, role):
    """CVE-2023-36465: every form page checks the permission server-side for every role."""
    if role != "anonymous":
        login(world["users"][role])
    for template, allowed in GET_PAGES.items():
        path = template.format(p=world["published"].id, a=world["attachment"].id)
        response = client.get(path)
        if role == "anonymous":
            assert response.status_code == 303 and response.headers["location"].startswith("/login"), path
        elif role in allowed:
            assert response.status_code == 200, (role, path)
        else:
            assert response.status_code == 403, (role, path)


@pytest.mark.parametrize(
    "path",
    [
        "/proposals/{d}",
        "/proposals/{d}/edit",
        "/proposals/{d}/withdraw",
        "/proposals/{d}/status",
    ],
)
def test_someone_elses_draft_is_invisible(client, login, world, path):
    """IDOR: another resident gets 404 for every page of someone else's draft."""
    login(world["users"]["resident"])
    assert client.get(path.format(d=world["draft"].id)).status_code == 404


@pytest.mark.parametrize(
    "route",
    [
        "publish",
        "withdraw",
        "status",
        "support",
        "unsupport",
        "follow",
        "unfollow",
        "edit",
        "attachments/{a}/delete",
    ],
)
def test_unsafe_routes_on_someone_elses_draft_are_404(client, login, world, route):
    """IDOR: POSTs against a draft the user cannot see answer 404 and change nothing."""
    login(world["users"]["resident"])
    path = f"/proposals/{world['draft'].id}/" + route.format(a=world["attachment"].id)
    assert client.post_form(path, {"to": "published", "reason": "x"}).status_code == 404


def test_unknown_ids_are_404(client, login, world):
    login(world["users"]["author"])
    for path in ("/proposals/999999", "/proposals/999999/edit", "/proposals/999999/attachments/1"):
        assert client.get(path).status_code == 404
    assert client.post_form("/proposals/999999/support").status_code == 404


STATUSES = [s.value for s in ProposalStatus]
PERMISSION_STATUSES = {
    # permission: statuses in which the author (or, for review/support, another person) may act
    "proposals.edit": {"draft", "published"},
    "proposals.attach": {"draft", "published"},
    "proposals.publish": {"draft"},
    "proposals.withdraw": {"published", "under_review"},
    "proposals.support": {"published", "under_review"},
    "proposals.review": {"published", "under_review", "accepted"},
}


@pytest.mark.parametrize("status", STATUSES)
def test_object_permissions_by_status(status):
    """The named permissions follow the lifecycle: which status allows which action, and for whom."""
    author, other = (
        User(id=1, display_name="A", role="resident"),
        User(id=2, display_name="B", role="resident"),
    )
    staff = User(id=3, display_name="S", role="staff")
    p = Proposal(
        id=1, author_id=1, theme_id=1, title="t", summary="s", body_md="", body_html="", status=status
    )
    for name, allowed in PERMISSION_STATUSES.items():
        actor = {"proposals.review": staff, "proposals.support": other}.get(name, author)
        assert can_user(actor, name, p) is (status in allowed), (name, status)
        assert can_user(None, name, p) is False
    for name in ("proposals.edit", "proposals.attach", "proposals.publish", "proposals.withdraw"):
        assert can_user(other, name, p) is False and can_user(staff, name, p) is False
    assert can_user(author, "proposals.support", p) is False
    assert can_user(other, "proposals.review", p) is False


def test_every_proposal_permission_is_registered():
    names = {n for n in PERMISSIONS if n.startswith("proposals.")}
    assert {
        "proposals.create",
        "proposals.edit",
        "proposals.publish",
        "proposals.withdraw",
        "proposals.support",
        "proposals.follow",
        "proposals.review",
        "proposals.attach",
    } <= names
