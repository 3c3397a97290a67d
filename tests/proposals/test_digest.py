"""The e-mail digest and `mitmachen digest`: one mail per person in their language through the real SMTP
sink, only the kinds chosen for e-mail, never to deleted, suspended or unconfirmed accounts, idempotent,
safe against overlapping runs, and a failed delivery is retried by the next run."""

from __future__ import annotations

import argparse
import datetime as dt

import pytest
from sqlalchemy import update

from app import outbox
from app.database import new_session, utcnow
from app.models import User
from app.ops_models import MailOutbox
from app.settings import Settings
from proposals import cli, digest
from proposals.models import Notification, NotificationSetting, Proposal
from tests.conftest import make_settings, query
from tests.proposals.factories import make_comment, make_proposal


def email_for(db, user: User, *kinds: str) -> None:
    with new_session(db.engine) as s:
        for kind in kinds:
            s.add(NotificationSetting(user_id=user.id, kind=kind, in_app=True, email=True))
        s.commit()


def add_note(db, user: User, proposal, kind: str = "status", comment=None, **fields) -> Notification:
    with new_session(db.engine) as s:
        n = Notification(
            user_id=user.id,
            kind=kind,
            proposal_id=proposal.id,
            comment_id=comment.id if comment else None,
            **fields,
        )
        s.add(n)
        s.commit()
        s.refresh(n)
        return n


@pytest.fixture
def env(monkeypatch, db, smtp_server):
    """The environment `mitmachen digest` reads: this test database and the SMTP sink."""
    _box, port = smtp_server
    for key, value in {
        "DATABASE_URL": db.url,
        "ENVIRONMENT": "development",
        "MAIL_BACKEND": "smtp",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(port),
        "BASE_URL": "https://mitmachen.example",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("SECRET_KEY", raising=False)
    return db


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="mitmachen")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["digest", *argv])
    return args.func(args)


def test_one_mail_per_person_in_their_language_then_nothing(env, db, mailbox, make_user, capsys):
    """Each person gets one mail listing their notifications with links, in German or English as they
    chose; emailed_at is set; a second run sends nothing."""
    author = make_user(name="Anna")
    de = make_user(name="Dora Deutsch", locale="de")
    en = make_user(name="Eve English", locale="en")
    p = make_proposal(db, author, title="Mehr Licht im Nordpark")
    c = make_comment(db, p, author, "Hallo")
    email_for(db, de, "comment", "status")
    email_for(db, en, "reply")
    add_note(db, de, p, "comment", c)
    add_note(db, de, p, "status")
    add_note(db, en, p, "reply", c)

    assert run() == 0
    assert "digest: sent 2 e-mails with 3 notifications" in capsys.readouterr().out
    [mail_de] = mailbox.to(de.email)
    [mail_en] = mailbox.to(en.email)
    assert mail_de["Subject"] == "Ihre Benachrichtigungen von Mitmachen Wuppertal"
    body = mailbox.body(mail_de)
    assert body.startswith("Guten Tag Dora Deutsch,")
    assert "es gibt 2 neue Benachrichtigungen für Sie:" in body
    assert "Neuer Kommentar von Anna zu „Mehr Licht im Nordpark“" in body
    assert f"https://mitmachen.example/proposals/{p.id}#comment-{c.id}" in body
    assert "Der Status von „Mehr Licht im Nordpark“ hat sich geändert (jetzt: veröffentlicht)" in body
    assert "https://mitmachen.example/notifications/settings" in body
    assert mail_en["Subject"] == "Your notifications from Mitmachen Wuppertal"
    body_en = mailbox.body(mail_en)
    assert body_en.startswith("Hello Eve English,") and "there is 1 new notification for you:" in body_en
    assert "Anna replied to your comment on “Mehr Licht im Nordpark”" in body_en
    assert all(n.emailed_at is not None for n in query(db, Notification))

    mailbox.messages.clear()
    assert run() == 0
    assert mailbox.messages == [] and "sent 0 e-mails" in capsys.readouterr().out


def test_only_chosen_kinds_unread_and_recent(env, db, mailbox, make_user):
    """Kinds without e-mail, notifications already read, and ones older than MAX_AGE_DAYS are not mailed
    (and stay unmarked)."""
    author, me = make_user(), make_user()
    p = make_proposal(db, author)
    email_for(db, me, "status")
    wanted = add_note(db, me, p, "status")
    not_chosen = add_note(db, me, p, "comment", make_comment(db, p, author))
    read = add_note(db, me, p, "status", read_at=utcnow())
    old = add_note(db, me, p, "status", created_at=utcnow() - dt.timedelta(days=digest.MAX_AGE_DAYS + 1))
    assert run() == 0
    [mail] = mailbox.to(me.email)
    assert "es gibt 1 neue Benachrichtigung für Sie:" in mailbox.body(mail)
    emailed = {n.id for n in query(db, Notification) if n.emailed_at is not None}
    assert emailed == {wanted.id} and not {not_chosen.id, read.id, old.id} & emailed


def test_never_mail_deleted_suspended_or_unconfirmed_accounts(env, db, mailbox, make_user):
    author = make_user()
    deleted, suspended, unconfirmed, fine = make_user(), make_user(), make_user(confirmed=False), make_user()
    p = make_proposal(db, author)
    for user in (deleted, suspended, unconfirmed, fine):
        email_for(db, user, "status")
        add_note(db, user, p)
    with new_session(db.engine) as s:
        s.execute(update(User).where(User.id == deleted.id).values(deleted_at=utcnow()))
        s.execute(
            update(User)
            .where(User.id == suspended.id)
            .values(suspended_until=utcnow() + dt.timedelta(days=3))
        )
        s.commit()
    assert run() == 0
    assert [m["To"] for m in mailbox.messages] == [fine.email]


def test_hidden_proposals_and_deleted_comments_are_not_mailed(env, db, mailbox, make_user):
    """Visibility: a notification whose proposal became non-public, or whose comment was deleted, is left
    out of the digest."""
    author, me = make_user(), make_user()
    p = make_proposal(db, author, title="Bald ein Entwurf")
    q = make_proposal(db, author, title="Sichtbar")
    c = make_comment(db, q, author, deleted_at=utcnow())
    email_for(db, me, "status", "comment")
    add_note(db, me, p)
    add_note(db, me, q, "comment", c)
    add_note(db, me, q)
    with new_session(db.engine) as s:
        s.execute(update(Proposal).where(Proposal.id == p.id).values(status="draft"))
        s.commit()
    assert run() == 0
    body = mailbox.body(mailbox.to(me.email)[0])
    assert "Bald ein Entwurf" not in body and "1 neue Benachrichtigung" in body and "Sichtbar" in body


def test_dry_run_changes_nothing(env, db, mailbox, make_user, capsys):
    author, me = make_user(), make_user()
    email_for(db, me, "status")
    add_note(db, me, make_proposal(db, author))
    assert run("--dry-run") == 0
    out = capsys.readouterr().out
    assert f"would mail user {me.id}: 1 notifications" in out and "would send 1 e-mails" in out
    assert mailbox.messages == [] and query(db, Notification)[0].emailed_at is None


def test_failed_delivery_exits_1(env, db, mailbox, make_user, monkeypatch, capsys):
    """SMTP down: exit 1 with the reason on stderr; the digest stays queued in the outbox (and is not
    composed again by the next run)."""
    author, me = make_user(), make_user()
    email_for(db, me, "status")
    add_note(db, me, make_proposal(db, author))
    monkeypatch.setenv("SMTP_PORT", "1")  # nothing listens there
    assert run() == 1
    assert f"error: digest to user {me.id} failed" in capsys.readouterr().err
    assert mailbox.messages == []
    [queued] = query(db, MailOutbox)
    assert queued.to == me.email and queued.sent_at is None and queued.failed_at is None
    assert run() == 0 and len(query(db, MailOutbox)) == 1


def test_retry_after_failure_delivers(env, db, mailbox, make_user, monkeypatch, smtp_server):
    """The outbox retries a digest whose delivery failed, once the mail server is back."""
    author, me = make_user(), make_user()
    email_for(db, me, "status")
    add_note(db, me, make_proposal(db, author))
    monkeypatch.setenv("SMTP_PORT", "1")
    assert run() == 1
    monkeypatch.setenv("SMTP_PORT", str(smtp_server[1]))
    [queued] = query(db, MailOutbox)
    later = queued.next_attempt_at + dt.timedelta(seconds=1)
    assert outbox.deliver_due(db.engine, Settings.from_env(), now=later).sent == 1
    assert len(mailbox.to(me.email)) == 1
    assert query(db, Notification)[0].emailed_at is not None


def test_overlapping_runs_claim_each_notification_once(db, mailbox, make_user, smtp_settings):
    """Two runs that collected the same pending notifications: the second one's claim finds nothing left,
    so the mail goes out once."""
    author, me = make_user(), make_user()
    email_for(db, me, "status")
    add_note(db, me, make_proposal(db, author))
    settings = make_settings(db, **smtp_settings)
    with new_session(db.engine) as s1, new_session(db.engine) as s2:
        first = digest.collect(s1, user=s1.get(User, me.id))
        second = digest.collect(s2, user=s2.get(User, me.id))
        assert first is not None and second is not None
        s2.rollback()
        assert digest.claim(s1, digest=first, now=utcnow()) is not None
        s1.commit()
        assert digest.claim(s2, digest=second, now=utcnow()) is None
        s2.commit()
    with new_session(db.engine) as s3:
        assert digest.send_digest(s3, user=s3.get(User, me.id), settings=settings) == 0
    assert mailbox.messages == []


def test_digest_subcommand_help(capsys):
    """`mitmachen digest --help` describes the command and its --dry-run option."""
    with pytest.raises(SystemExit) as exc:
        run("--help")
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "usage: mitmachen digest" in out and "--dry-run" in out
