"""Every decision type over HTTP: the record, its effect, the resolved reports, the audit log entry."""

from __future__ import annotations

from sqlalchemy import select

from app.database import new_session
from app.models import User
from moderation.models import Flag, ModerationDecision, ModerationNotice
from proposals.models import Comment, Follow, Proposal, Support
from tests.conftest import query
from tests.moderation.conftest import decide, file_flags, ground_id, hide_item
from tests.proposals.factories import follow, make_comment, make_proposal, reload


def _audit_entries(db):
    from voting import audit

    with new_session(db.engine) as s:
        entries = audit.entries(s, audit.PLATFORM_LOG, limit=1000)
        return [audit.decode(e.entry) for e in entries if e.entry_type == "moderation.decision"]


def test_hide_comment_records_decision_resolves_reports_and_logs(db, client, make_user, login):
    """V2.3.3: the decision, the resolved reports and the audit log entry land in one transaction."""
    author, mod = make_user(), make_user("moderator")
    proposal = make_proposal(db, make_user())
    comment = make_comment(db, proposal, author, "Du Idiot")
    file_flags(db, "comment", comment.id)
    login(mod)
    r = hide_item(client, db, "comment", comment.id)
    assert r.status_code == 303, r.text
    [d] = query(db, ModerationDecision)
    assert (d.action, d.item_type, d.item_id, d.moderator_id, d.author_id) == (
        "hide",
        "comment",
        comment.id,
        mod.id,
        author.id,
    )
    assert [f.resolved_by_decision_id for f in query(db, Flag)] == [d.id]
    assert reload(db, Comment, comment.id).body_md == "Du Idiot"  # a record, never a change to the content
    [entry] = _audit_entries(db)
    assert entry["payload"]["item"] == f"comment:{comment.id}" and entry["payload"]["outcome"] == "hide"
    assert entry["payload"]["ground"] == "stgb-185" and entry["payload"]["decision"] == d.id
    assert len(query(db, ModerationNotice, ModerationNotice.user_id == author.id)) == 1


def test_hide_requires_ground_and_statement(db, client, make_user, login):
    """Restricting decisions need a ground and a statement: 400 with field errors and nothing written."""
    proposal = make_proposal(db, make_user())
    login(make_user("moderator"))
    r = decide(client, "proposal", proposal.id, action="hide", statement="x")
    assert r.status_code == 400 and 'id="e-ground"' in r.text
    r = decide(client, "proposal", proposal.id, action="hide", ground=ground_id(db))
    assert r.status_code == 400 and 'id="e-statement"' in r.text
    assert query(db, ModerationDecision) == [] and _audit_entries(db) == []


def test_dismiss_resolves_reports_without_notice(db, client, make_user, login):
    """Dismissing resolves the open reports; nothing restricts the author, so no notice."""
    author = make_user()
    proposal = make_proposal(db, author)
    file_flags(db, "proposal", proposal.id, 2)
    login(make_user("moderator"))
    assert decide(client, "proposal", proposal.id, action="dismiss").status_code == 303
    assert all(f.resolved_by_decision_id for f in query(db, Flag))
    assert query(db, ModerationNotice) == []
    assert client.get("/moderation").text.count(f"/moderation/items/proposal/{proposal.id}") == 0


def test_restore_supersedes_hide(db, client, make_user, login):
    """Restore puts a hidden item back; restoring a visible item is a field error."""
    proposal = make_proposal(db, make_user())
    login(make_user("moderator"))
    assert decide(client, "proposal", proposal.id, action="restore").status_code == 400
    hide_item(client, db, "proposal", proposal.id, ground="rules-respect", statement="Regelverstoß")
    assert client.get("/proposals").text.count(f'/proposals/{proposal.id}"') == 0
    assert (
        hide_item(client, db, "proposal", proposal.id, ground="rules-respect", statement="x").status_code
        == 400
    )
    assert decide(client, "proposal", proposal.id, action="restore").status_code == 303
    hide = query(db, ModerationDecision, ModerationDecision.action == "hide")[0]
    assert hide.superseded_at is not None
    assert f"/proposals/{proposal.id}" in client.get("/proposals").text


def test_edit_title_and_theme_with_note(db, client, make_user, login):
    """Edit changes title and theme area and keeps the visible note on the decision."""
    proposal = make_proposal(db, make_user())
    login(make_user("moderator"))
    from proposals.models import Theme

    with new_session(db.engine) as s:
        other = s.execute(select(Theme.id).where(Theme.id != proposal.theme_id)).scalars().first()
    r = decide(
        client,
        "proposal",
        proposal.id,
        action="edit",
        ground=ground_id(db, "rules-topic"),
        statement="Titel präzisiert",
        title="Neue Bänke im Park",
        theme=other,
        note="Titel von der Moderation geändert",
    )
    assert r.status_code == 303, r.text
    p = reload(db, Proposal, proposal.id)
    assert (p.title, p.theme_id) == ("Neue Bänke im Park", other)
    assert query(db, ModerationDecision)[0].note == "Titel von der Moderation geändert"
    r = decide(client, "proposal", proposal.id, action="edit", ground=ground_id(db), statement="x", title="Y")
    assert r.status_code == 400 and 'id="e-note"' in r.text


def test_duplicate_merges_supports_and_followers_without_doubles(db, client, make_user, login):
    """Duplicates: supports and followers move to the original; who supported both counts once."""
    a, b, c = make_user(), make_user(), make_user()
    source = make_proposal(db, make_user(), title="Bänke A")
    target = make_proposal(db, make_user(), title="Bänke B")
    with new_session(db.engine) as s:
        for pid, users in ((source.id, (a, b)), (target.id, (b, c))):
            for u in users:
                s.add(Support(proposal_id=pid, user_id=u.id))
        s.commit()
    follow(db, source, a)
    follow(db, target, a)
    login(make_user("moderator"))
    r = decide(
        client,
        "proposal",
        source.id,
        action="duplicate",
        ground=ground_id(db, "rules-duplicate"),
        statement="Gibt es schon",
        duplicate_of=target.id,
    )
    assert r.status_code == 303, r.text
    assert sorted(s.user_id for s in query(db, Support, Support.proposal_id == target.id)) == sorted(
        [a.id, b.id, c.id]
    )
    assert query(db, Support, Support.proposal_id == source.id) == []
    assert [f.user_id for f in query(db, Follow, Follow.proposal_id == target.id)] == [a.id]
    assert (
        reload(db, Proposal, target.id).support_count == 3
        and reload(db, Proposal, source.id).support_count == 0
    )
    assert query(db, ModerationDecision)[0].duplicate_of_id == target.id
    assert f'/proposals/{source.id}"' not in client.get("/proposals").text
    r = decide(
        client,
        "proposal",
        target.id,
        action="duplicate",
        ground=ground_id(db),
        statement="x",
        duplicate_of=target.id,
    )
    assert r.status_code == 400 and 'id="e-duplicate_of"' in r.text


def test_lock_comments(db, client, make_user, login):
    """Lock comments sets the proposal's lock; locking twice is an error."""
    proposal = make_proposal(db, make_user())
    login(make_user("moderator"))
    assert (
        decide(
            client,
            "proposal",
            proposal.id,
            action="lock_comments",
            ground=ground_id(db),
            statement="Zu hitzig",
        ).status_code
        == 303
    )
    assert reload(db, Proposal, proposal.id).comments_locked_at is not None
    assert (
        decide(
            client, "proposal", proposal.id, action="lock_comments", ground=ground_id(db), statement="x"
        ).status_code
        == 400
    )


def test_warn_only_notifies(db, client, make_user, login):
    """A warning changes nothing but tells the author why."""
    author = make_user()
    comment = make_comment(db, make_proposal(db, make_user()), author)
    login(make_user("moderator"))
    assert (
        decide(
            client, "comment", comment.id, action="warn", ground=ground_id(db), statement="Bitte sachlich"
        ).status_code
        == 303
    )
    assert reload(db, User, author.id).suspended_until is None
    assert len(query(db, ModerationNotice, ModerationNotice.user_id == author.id)) == 1


def test_suspend_for_days_revokes_sessions(db, client, make_user, login, app):
    """Suspension for a period: the account is suspended and its sessions end."""
    from tests.conftest import Client

    author = make_user()
    comment = make_comment(db, make_proposal(db, make_user()), author)
    with Client(app, base_url="http://testserver", follow_redirects=False) as other:
        login(author, c=other)
        assert other.get("/account").status_code == 200
        login(make_user("moderator"))
        r = decide(
            client,
            "comment",
            comment.id,
            action="suspend",
            ground=ground_id(db),
            statement="Wiederholt",
            days=7,
        )
        assert r.status_code == 303, r.text
        assert other.get("/account").status_code == 303  # signed out
    u = reload(db, User, author.id)
    assert u.is_suspended()
    assert query(db, ModerationDecision)[0].suspension_until is not None
    r = decide(client, "profile", author.id, action="suspend", ground=ground_id(db), statement="x", days=0)
    assert r.status_code == 400 and 'id="e-days"' in r.text


def test_ban_is_admin_only(db, client, make_user, login):
    """Only admins ban (moderators get 403); a ban is a permanent suspension."""
    author = make_user()
    login(make_user("moderator"))
    assert (
        decide(client, "profile", author.id, action="ban", ground=ground_id(db), statement="x").status_code
        == 403
    )
    assert 'value="ban"' not in client.get(f"/moderation/items/profile/{author.id}").text
    client.post_form("/logout")
    login(make_user("admin"))
    assert (
        decide(
            client,
            "profile",
            author.id,
            action="ban",
            ground=ground_id(db, "stgb-130"),
            statement="Volksverhetzung",
        ).status_code
        == 303
    )
    u = reload(db, User, author.id)
    assert u.suspended_until is not None and u.suspended_until.year >= 2100


def test_action_not_applicable_to_type(db, client, make_user, login):
    """Actions are allowlisted per item type (no lock on a comment, no hide of a profile)."""
    comment = make_comment(db, make_proposal(db, make_user()), make_user())
    login(make_user("moderator"))
    assert (
        decide(
            client, "comment", comment.id, action="lock_comments", ground=ground_id(db), statement="x"
        ).status_code
        == 400
    )
    assert (
        decide(
            client, "profile", comment.author_id, action="hide", ground=ground_id(db), statement="x"
        ).status_code
        == 400
    )
    assert decide(client, "comment", comment.id, action="drop table", statement="x").status_code == 400
    assert query(db, ModerationDecision) == []


def test_htmx_decision_returns_partial(db, client, make_user, login):
    """With htmx the decision answers with the status partial (aria-live region), without it a redirect."""
    comment = make_comment(db, make_proposal(db, make_user()), make_user())
    login(make_user("moderator"))
    r = client.post(
        f"/moderation/items/comment/{comment.id}/decide",
        data={"action": "dismiss", "csrf_token": client.csrf("/moderation")},
        headers={"HX-Request": "true"},
    )
    assert r.status_code == 200 and 'role="status"' in r.text and "<html" not in r.text


def test_admin_adds_and_deactivates_grounds(db, client, make_user, login):
    """Grounds are configurable: an admin adds one (invalid input changes nothing) and deactivates one, which
    moderators can then no longer choose."""
    from moderation.models import ModerationGround

    target = make_proposal(db, make_user())
    login(make_user("admin"))
    r = client.post_form(
        "/admin/moderation/grounds",
        {"code": "rules-ads", "title_de": "Keine Werbung", "title_en": "No ads", "kind": "community-rule"},
    )
    assert r.status_code == 303
    client.post_form(
        "/admin/moderation/grounds", {"code": "bad code!", "title_de": "x", "title_en": "y", "kind": "legal"}
    )
    assert [g.title_en for g in query(db, ModerationGround, ModerationGround.code == "rules-ads")] == [
        "No ads"
    ]
    assert query(db, ModerationGround, ModerationGround.code == "bad code!") == []
    keep = [g.id for g in query(db, ModerationGround) if g.code != "stgb-185"]
    r = client.post_form("/admin/moderation", {"words": "", "ground_active": [str(i) for i in keep]})
    assert r.status_code == 303
    assert not query(db, ModerationGround, ModerationGround.code == "stgb-185")[0].active
    client.post_form("/logout")
    login(make_user("moderator"))
    assert "§ 185 StGB" not in client.get(f"/moderation/items/proposal/{target.id}").text
    r = hide_item(client, db, "proposal", target.id, statement="x")
    assert r.status_code == 400 and 'id="e-ground"' in r.text
