"""Notifications: who is notified of comments, replies, status changes and review requests; opt-in per kind;
the in-app list (newest first, unread, mark read, pagination); the settings page; visibility; XSS."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import update

from app.database import new_session, utcnow
from app.models import User
from proposals import notifications
from proposals.models import Comment, Notification, NotificationSetting, Proposal
from tests.conftest import query
from tests.proposals.factories import follow, make_comment, make_proposal, reload


def notes(db, user: User, kind: str | None = None) -> list[Notification]:
    rows = query(db, Notification, Notification.user_id == user.id)
    return [n for n in rows if kind is None or n.kind == kind]


def set_pref(db, user: User, kind: str, *, in_app: bool, email: bool) -> None:
    with new_session(db.engine) as s:
        s.add(NotificationSetting(user_id=user.id, kind=kind, in_app=in_app, email=email))
        s.commit()


def notify(db, proposal: Proposal, kind: str, **kwargs) -> int:
    with new_session(db.engine) as s:
        p = s.get(Proposal, proposal.id)
        if kind == "review":
            n = notifications.notify_staff(s, proposal=p, kind=kind)
        else:
            n = notifications.notify_followers(s, proposal=p, kind=kind, **kwargs)
        s.commit()
        return n


def test_new_comment_notifies_followers_but_not_the_commenter(client, db, make_user, login):
    """Followers get kind "comment" pointing at the comment; the person commenting does not, even when
    following; people not following get nothing."""
    author, fan, other, commenter = (make_user(name=n) for n in ("Anna", "Fritz Fan", "Olga", "Carl"))
    p = make_proposal(db, author)
    follow(db, p, fan, commenter)
    login(commenter)
    client.post_form(f"/proposals/{p.id}/comments", {"body": "Hallo"})
    [c] = query(db, Comment)
    assert [(n.kind, n.proposal_id, n.comment_id) for n in notes(db, fan)] == [("comment", p.id, c.id)]
    assert notes(db, commenter) == [] and notes(db, other) == [] and notes(db, author) == []


def test_reply_notifies_the_answered_author_once_and_never_oneself(client, db, make_user, login):
    """The author of the answered comment gets kind "reply" (not also "comment" when following); replying
    to oneself notifies nobody about a reply."""
    author, asker, answerer = make_user(), make_user(), make_user()
    p = make_proposal(db, author)
    follow(db, p, asker)
    question = make_comment(db, p, asker, "Frage")
    login(answerer)
    client.post_form(f"/proposals/{p.id}/comments", {"body": "Antwort", "parent_id": str(question.id)})
    assert [n.kind for n in notes(db, asker)] == ["reply"]
    login(asker)
    client.post_form(f"/proposals/{p.id}/comments", {"body": "Selbst", "parent_id": str(question.id)})
    assert [n.kind for n in notes(db, asker)] == ["reply"]
    assert notes(db, answerer) == []


def test_opt_out_and_defaults(db, make_user):
    """Defaults: in the app on, e-mail off. With both off for a kind nothing is stored; e-mail alone is
    enough to store it (for the digest)."""
    author, a, b, c = make_user(), make_user(), make_user(), make_user()
    p = make_proposal(db, author)
    follow(db, p, a, b, c)
    set_pref(db, b, "status", in_app=False, email=False)
    set_pref(db, c, "status", in_app=False, email=True)
    assert notify(db, p, "status", actor=author) == 2
    assert len(notes(db, a)) == 1 and notes(db, b) == [] and len(notes(db, c)) == 1
    with new_session(db.engine) as s:
        assert notifications.preferences(s, user=s.get(User, a.id)) == {
            "comment": (True, False),
            "reply": (True, False),
            "status": (True, False),
        }


def test_no_notifications_for_non_public_proposals_or_deleted_accounts(db, make_user):
    """A draft (or hidden) proposal produces no notification; deleted accounts get none either."""
    author, fan, gone = make_user(), make_user(), make_user()
    draft = make_proposal(db, author, status="draft")
    follow(db, draft, fan)
    assert notify(db, draft, "status") == 0
    p = make_proposal(db, author)
    with new_session(db.engine) as s:
        s.execute(update(User).where(User.id == gone.id).values(deleted_at=utcnow()))
        s.commit()
    follow(db, p, fan, gone)
    assert notify(db, p, "status") == 1 and notes(db, gone) == []


def test_review_reaches_staff_and_admins_only(db, make_user):
    """notify_staff: staff and admin accounts (not residents or moderators), once each."""
    resident, moderator, staff, admin = (make_user(r) for r in ("resident", "moderator", "staff", "admin"))
    p = make_proposal(db, resident)
    assert notify(db, p, "review") == 2
    assert {n.user_id for n in query(db, Notification)} == {staff.id, admin.id}
    with pytest.raises(ValueError):
        notify(db, p, "bogus")


def test_list_newest_first_with_unread_marks_and_links(client, db, make_user, login):
    """The list shows the newest first, marks unread ones (text, not only colour), links to the comment
    and counts unread; opening an entry marks it read and goes to the comment."""
    me, other = make_user(), make_user(name="Rita Reply")
    p = make_proposal(db, me, title="Mehr Bäume in Elberfeld")
    follow(db, p, me)
    old = make_comment(db, p, other, "alt")
    new = make_comment(db, p, other, "neu")
    with new_session(db.engine) as s:
        s.add(Notification(user_id=me.id, kind="comment", proposal_id=p.id, comment_id=old.id,
                           created_at=utcnow() - dt.timedelta(hours=1)))  # fmt: skip
        s.add(Notification(user_id=me.id, kind="reply", proposal_id=p.id, comment_id=new.id))
        s.commit()
    login(me)
    page = client.get("/notifications")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    html = page.text
    assert "Sie haben 2 ungelesene Benachrichtigungen." in html
    first = html.index("Rita Reply hat auf Ihren Kommentar zu „Mehr Bäume in Elberfeld“ geantwortet")
    second = html.index("Neuer Kommentar von Rita Reply zu „Mehr Bäume in Elberfeld“")
    assert first < second and html.count(">ungelesen<") == 2
    [reply_note] = notes(db, me, "reply")
    response = client.get(f"/notifications/{reply_note.id}")
    assert (
        response.status_code == 303 and response.headers["location"] == f"/proposals/{p.id}#comment-{new.id}"
    )
    assert reload(db, Notification, reply_note.id).read_at is not None
    assert "Sie haben 1 ungelesene Benachrichtigung." in client.get("/notifications").text


def test_mark_one_and_all_as_read(client, db, make_user, login):
    me = make_user()
    p = make_proposal(db, me)
    follow(db, p, me)
    for _ in range(3):
        notify(db, p, "status")
    login(me)
    first = notes(db, me)[0]
    response = client.post_form(f"/notifications/{first.id}/read", {"page": "1"})
    assert response.status_code == 303 and response.headers["location"] == "/notifications?page=1"
    assert sum(n.read_at is None for n in notes(db, me)) == 2
    assert client.post_form("/notifications/read-all").status_code == 303
    assert all(n.read_at is not None for n in notes(db, me))
    assert "Sie haben keine ungelesenen Benachrichtigungen." in client.get("/notifications").text


def test_pagination_and_page_parameter(client, db, make_user, login):
    """25 notifications: 20 on page 1, 5 on page 2; a page out of range or malformed is clamped or page 1,
    and the raw parameter is never echoed (CVE-2024-32469)."""
    me = make_user()
    p = make_proposal(db, me)
    follow(db, p, me)
    for _ in range(25):
        notify(db, p, "status")
    login(me)
    assert client.get("/notifications").text.count('class="notification unread"') == 20
    page2 = client.get("/notifications?page=2").text
    assert page2.count('class="notification unread"') == 5 and "Seite 2 von 2" in page2
    assert "Seite 2 von 2" in client.get("/notifications?page=99").text
    evil = client.get('/notifications?page="><script>alert(1)</script>')
    assert evil.status_code == 200 and "<script>alert(1)" not in evil.text and "Seite 1 von 2" in evil.text


def test_someone_elses_notifications_are_refused(client, db, make_user, login):
    """IDOR: opening or marking another person's notification is 403 and changes nothing; unknown ids 404;
    anonymous visitors are sent to the login page."""
    me, other = make_user(), make_user()
    p = make_proposal(db, other)
    follow(db, p, other)
    notify(db, p, "status")
    [theirs] = notes(db, other)
    for path in ("/notifications", "/notifications/settings", f"/notifications/{theirs.id}"):
        response = client.get(path)
        assert response.status_code == 303 and response.headers["location"].startswith("/login?next="), path
    login(me)
    assert client.get(f"/notifications/{theirs.id}").status_code == 403
    assert client.post_form(f"/notifications/{theirs.id}/read").status_code == 403
    assert client.post_form("/notifications/read-all").status_code == 303
    assert reload(db, Notification, theirs.id).read_at is None
    assert client.get("/notifications/999999").status_code == 404
    assert client.post_form("/notifications/999999/read").status_code == 404


def test_notifications_follow_visibility(client, db, make_user, login):
    """CVE-2024-27090: when the proposal stops being public or the comment is deleted, its notifications
    drop out of the list and the unread count."""
    me, other = make_user(), make_user()
    p = make_proposal(db, me, title="Vorschlag der verschwindet")
    q = make_proposal(db, me, title="Vorschlag mit gelöschtem Kommentar")
    c = make_comment(db, q, other, "wird gelöscht")
    with new_session(db.engine) as s:
        s.add(Notification(user_id=me.id, kind="status", proposal_id=p.id))
        s.add(Notification(user_id=me.id, kind="comment", proposal_id=q.id, comment_id=c.id))
        s.commit()
    login(me)
    html = client.get("/notifications").text
    assert "Vorschlag der verschwindet" in html and "Vorschlag mit gelöschtem Kommentar" in html
    with new_session(db.engine) as s:
        s.execute(update(Proposal).where(Proposal.id == p.id).values(status="draft"))
        s.execute(
            update(Comment).where(Comment.id == c.id).values(deleted_at=utcnow(), body_md="", body_html="")
        )
        s.commit()
    html = client.get("/notifications").text
    assert "Vorschlag der verschwindet" not in html and "Vorschlag mit gelöschtem Kommentar" not in html
    assert "Sie haben keine ungelesenen Benachrichtigungen." in html


def test_in_app_off_hides_a_kind_from_the_list(client, db, make_user, login):
    me = make_user()
    p = make_proposal(db, me)
    follow(db, p, me)
    set_pref(db, me, "status", in_app=False, email=True)
    notify(db, p, "status")
    assert len(notes(db, me)) == 1
    login(me)
    html = client.get("/notifications").text
    assert "Der Status von" not in html and "Sie haben keine ungelesenen Benachrichtigungen." in html


def test_settings_page_saves_choices(client, db, make_user, login):
    """The settings form shows two checkboxes per kind (defaults: app on, e-mail off) and saves them; a
    resident has no review kind, staff do; a tampered value is 400 and writes nothing."""
    me = make_user()
    login(me)
    html = client.get("/notifications/settings").text
    assert 'id="f-in_app_comment" name="in_app_comment" type="checkbox" checked' in html
    assert 'id="f-email_comment" name="email_comment" type="checkbox">' in html
    assert "f-email_review" not in html
    response = client.post_form(
        "/notifications/settings", {"in_app_comment": "on", "email_comment": "on", "email_reply": "on"}
    )
    assert response.status_code == 303
    rows = {
        r.kind: (r.in_app, r.email)
        for r in query(db, NotificationSetting, NotificationSetting.user_id == me.id)
    }
    assert rows == {"comment": (True, True), "reply": (False, True), "status": (False, False)}
    assert (
        "Ihre Einstellungen für Benachrichtigungen wurden gespeichert."
        in client.get("/notifications/settings").text
    )
    assert client.post_form("/notifications/settings", {"email_status": "yes"}).status_code == 400
    assert {r.kind: (r.in_app, r.email) for r in query(db, NotificationSetting)} == rows
    client.post_form("/notifications/settings", {"email_review": "on"})  # not a resident's kind: ignored
    assert "review" not in {r.kind for r in query(db, NotificationSetting)}
    staff = make_user("staff")
    login(staff)
    assert 'id="f-email_review"' in client.get("/notifications/settings").text


def test_notification_texts_escape_names_and_titles(client, db, make_user, login):
    """CVE-2026-23891: display names and titles in notifications are text, never markup."""
    me = make_user()
    evil = make_user(name="<img src=x onerror=alert(1)>")
    p = make_proposal(db, me, title='"><script>alert(2)</script> Titel')
    follow(db, p, me)
    login(evil)
    client.post_form(f"/proposals/{p.id}/comments", {"body": "hi"})
    login(me)
    html = client.get("/notifications").text
    assert "<img src=x" not in html and "<script>alert(2)" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_header_links_to_notifications_for_signed_in_people(client, make_user, login):
    assert 'href="/notifications"' not in client.get("/").text
    login(make_user())
    assert (
        '<a href="/notifications" class="notifications-link">Benachrichtigungen</a>' in client.get("/").text
    )
