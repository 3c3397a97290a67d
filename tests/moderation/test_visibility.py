"""The one visibility rule with moderation installed: hidden and held content disappears from every public
listing, count, search result, feed and API response (CVE-2024-27090, CVE-2026-40870), and comes back when
restored."""

from __future__ import annotations

import datetime as dt

import pytest

from app.database import new_session, utcnow
from moderation.models import ModerationDecision
from proposals import digest, listing, notifications
from proposals.models import Notification, NotificationSetting, Theme
from tests.proposals.factories import make_comment, make_proposal

TITLE = "Verstecktes Seilbahnprojekt"
BODY = "Der Kommentar mit dem Wort Zebrastreifen"


def _decide(db, item_type, item_id, action="hide", superseded=False):
    with new_session(db.engine) as s:
        s.add(
            ModerationDecision(
                item_type=item_type,
                item_id=item_id,
                action=action,
                superseded_at=utcnow() if superseded else None,
            )
        )
        s.commit()


@pytest.fixture(params=["hide", "hold", "duplicate"])
def hidden_world(request, db, make_user):
    """A visible and a hidden proposal in the same theme; a visible and a hidden comment."""
    author = make_user()
    visible = make_proposal(db, author, title="Sichtbarer Vorschlag", body="Seilbahn für alle")
    hidden = make_proposal(db, author, title=TITLE, body="Seilbahn geheim")
    _decide(db, "proposal", hidden.id, request.param)
    shown = make_comment(db, visible, author, "Sichtbarer Kommentar")
    secret = make_comment(db, visible, author, BODY)
    _decide(db, "comment", secret.id, "hide" if request.param == "duplicate" else request.param)
    with new_session(db.engine) as s:
        theme = s.get(Theme, visible.theme_id)
    return dict(author=author, visible=visible, hidden=hidden, shown=shown, secret=secret, theme=theme)


def test_proposal_list_and_search(client, hidden_world):
    """/proposals and its search never show a hidden proposal."""
    assert "Sichtbarer Vorschlag" in client.get("/proposals").text
    assert TITLE not in client.get("/proposals").text
    assert TITLE not in client.get("/proposals?q=Seilbahn").text


def test_theme_page_and_home_counts(client, db, hidden_world):
    """Theme pages and the home page's counts leave hidden proposals out."""
    theme = hidden_world["theme"]
    page = client.get(f"/themes/{theme.slug}")
    assert page.status_code == 200 and TITLE not in page.text
    with new_session(db.engine) as s:
        assert listing.theme_counts(s, theme=theme).proposals == 1
        assert listing.theme_activity(s)[theme.id].proposals == 1
        assert [c.proposal.id for c in listing.latest(s)] == [hidden_world["visible"].id]
    assert TITLE not in client.get("/").text


def test_api_list_detail_and_comments(client, hidden_world):
    """The open-data API: list, detail (404) and comments of a visible proposal without the hidden one."""
    items = client.get("/api/v1/proposals").json()["items"]
    assert [i["id"] for i in items] == [hidden_world["visible"].id]
    assert client.get(f"/api/v1/proposals/{hidden_world['hidden'].id}").status_code == 404
    assert client.get(f"/api/v1/proposals/{hidden_world['hidden'].id}/comments").status_code == 404
    comments = client.get(f"/api/v1/proposals/{hidden_world['visible'].id}/comments").json()["items"]
    assert [c["id"] for c in comments] == [hidden_world["shown"].id]


def test_proposal_page_comments(client, hidden_world):
    """The proposal page shows the visible comment and not the hidden one; the hidden proposal is 404."""
    page = client.get(f"/proposals/{hidden_world['visible'].id}").text
    assert "Sichtbarer Kommentar" in page and "Zebrastreifen" not in page
    assert client.get(f"/comments/{hidden_world['secret'].id}").status_code == 404
    assert client.get(f"/proposals/{hidden_world['hidden'].id}").status_code == 404


def test_notifications_and_digest(client, db, make_user, login, hidden_world):
    """In-app notifications and the e-mail digest skip hidden proposals and comments."""
    me = make_user()
    with new_session(db.engine) as s:
        s.add(NotificationSetting(user_id=me.id, kind="comment", in_app=True, email=True))
        s.add(
            Notification(
                user_id=me.id,
                kind="comment",
                proposal_id=hidden_world["visible"].id,
                comment_id=hidden_world["secret"].id,
            )
        )
        s.add(Notification(user_id=me.id, kind="status", proposal_id=hidden_world["hidden"].id))
        s.add(
            Notification(
                user_id=me.id,
                kind="comment",
                proposal_id=hidden_world["visible"].id,
                comment_id=hidden_world["shown"].id,
            )
        )
        s.commit()
        since = utcnow() - dt.timedelta(days=1)
        entries = notifications.pending_email(s, user=me, kinds=["comment", "status"], since=since)
        assert [e.notification.comment_id for e in entries] == [hidden_world["shown"].id]
        assert digest.collect(s, user=me) is not None
        assert len(digest.collect(s, user=me).entries) == 1
    login(me)
    page = client.get("/notifications").text
    assert TITLE not in page


def test_visible_to_author_and_moderators(client, make_user, login, hidden_world):
    """The hidden proposal stays visible to moderators (in the queue's item page)."""
    login(make_user("moderator"))
    page = client.get(f"/moderation/items/proposal/{hidden_world['hidden'].id}")
    assert page.status_code == 200 and TITLE in page.text


def test_superseded_decision_no_longer_hides(client, db, make_user):
    """A restored item (hide superseded) is public again."""
    p = make_proposal(db, make_user(), title="Wieder da")
    _decide(db, "proposal", p.id, "hide", superseded=True)
    assert "Wieder da" in client.get("/proposals").text
    assert client.get(f"/api/v1/proposals/{p.id}").status_code == 200
