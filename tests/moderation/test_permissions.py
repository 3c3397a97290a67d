"""The permission matrix: anonymous, resident, author, moderator, staff, admin × each moderation action
(CVE-2023-36465, CVE-2026-40869): moderators cannot moderate their own content; only admins ban and
configure."""

from __future__ import annotations

import pytest

from moderation.models import ModerationDecision
from tests.conftest import query
from tests.moderation.conftest import decide, ground_id
from tests.proposals.factories import make_proposal

ROLES = ["anonymous", "resident", "author", "moderator", "staff", "admin"]


@pytest.fixture
def world(db, make_user):
    author = make_user()
    users = {
        "resident": make_user(),
        "author": author,
        "moderator": make_user("moderator"),
        "staff": make_user("staff"),
        "admin": make_user("admin"),
    }
    return dict(users=users, proposal=make_proposal(db, author))


def _as(role, world, login):
    if role != "anonymous":
        login(world["users"][role])


EXPECT_GET = {
    # path: roles allowed (others: anonymous → login redirect, rest → 403)
    "/moderation": {"moderator", "admin"},
    "/moderation/items/proposal/{pid}": {"moderator", "admin"},
    "/admin/moderation": {"admin"},
    "/transparency.csv": {"moderator", "staff", "admin"},
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("path", list(EXPECT_GET))
def test_get_matrix(client, login, world, role, path):
    """Each moderation page × each role."""
    _as(role, world, login)
    r = client.get(path.format(pid=world["proposal"].id))
    if role in EXPECT_GET[path]:
        assert r.status_code == 200
    elif role == "anonymous":
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
    else:
        assert r.status_code == 403


@pytest.mark.parametrize("role", ROLES)
def test_public_pages(client, login, world, role):
    """Reporting and the transparency report are open to everyone."""
    _as(role, world, login)
    assert client.get("/transparency").status_code == 200
    assert client.get(f"/report/proposal/{world['proposal'].id}").status_code == 200


@pytest.mark.parametrize("role", ROLES)
def test_decide_matrix(db, client, login, world, role):
    """Deciding: moderators and admins only, and never on their own content (author → 403)."""
    _as(role, world, login)
    r = decide(client, "proposal", world["proposal"].id, action="warn", ground=ground_id(db), statement="x")
    if role in ("moderator", "admin"):
        assert r.status_code == 303
        assert len(query(db, ModerationDecision)) == 1
    else:
        assert r.status_code == (303 if role == "anonymous" else 403)
        assert query(db, ModerationDecision) == []


def test_moderator_cannot_moderate_own_content(db, client, make_user, login):
    """A moderator's own proposal: 403 on decide, and the item page says so instead of offering a form."""
    mod = make_user("moderator")
    own = make_proposal(db, mod)
    login(mod)
    assert decide(client, "proposal", own.id, action="dismiss").status_code == 403
    assert "Record decision" not in client.get(f"/moderation/items/proposal/{own.id}").text
    assert (
        decide(client, "profile", mod.id, action="warn", ground=ground_id(db), statement="x").status_code
        == 403
    )
    assert query(db, ModerationDecision) == []


@pytest.mark.parametrize("role", ROLES)
def test_admin_settings_post_matrix(db, client, login, world, role):
    """Only admins change grounds, pre-moderation and the word list."""
    _as(role, world, login)
    r = client.post_form("/admin/moderation", {"words": "Spamwort"})
    r2 = client.post_form(
        "/admin/moderation/grounds",
        {"code": "new-ground", "title_de": "Neu", "title_en": "New", "kind": "legal"},
    )
    if role == "admin":
        assert r.status_code == 303 and r2.status_code == 303
    else:
        assert r.status_code in (303, 403) and r2.status_code in (303, 403)
        if role != "anonymous":
            assert r.status_code == 403 and r2.status_code == 403
        from moderation.models import ModerationGround, ModerationSetting

        assert query(db, ModerationSetting) == []
        assert query(db, ModerationGround, ModerationGround.code == "new-ground") == []
