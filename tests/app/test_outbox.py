"""The mail outbox (app/outbox.py): mail is queued in the sender's transaction, delivered after the
commit, retried with backoff when the mail server is down, given up after MAIL_MAX_ATTEMPTS, and never
sent twice however many workers deliver at the same time."""

from __future__ import annotations

import datetime as dt
import random
import threading
import time

import pytest
from prometheus_client import REGISTRY

from app import outbox
from app.database import new_session, utcnow
from app.mail import send_mail
from app.ops_models import MailOutbox
from tests.conftest import free_port, make_settings, query


def _queue(db, n: int = 1, *, to: str = "someone@example.org") -> list[int]:
    with new_session(db.engine) as s:
        ids = [send_mail(s, None, to=to, subject=f"Subject {i}", body=f"Body {i}\n") for i in range(n)]
        s.commit()
    return ids


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_rolled_back_unit_of_work_sends_nothing(db, mailbox, smtp_settings):
    """ASVS V2.3.3: the mail and the change land together or not at all."""
    settings = make_settings(db, **smtp_settings)
    with new_session(db.engine) as s:
        send_mail(s, settings, to="a@example.org", subject="Hello", body="Body")
        s.rollback()
    assert query(db, MailOutbox) == []
    assert outbox.deliver_due(db.engine, settings).sent == 0 and mailbox.messages == []


def test_committed_mail_is_delivered_once(db, mailbox, smtp_settings):
    settings = make_settings(db, **smtp_settings)
    queued_before = _sample("mitmachen_mails_queued_total")
    sent_before = _sample("mitmachen_mails_sent_total")
    [mail_id] = _queue(db, to="b@example.org")
    assert _sample("mitmachen_mails_queued_total") == queued_before + 1
    report = outbox.deliver_due(db.engine, settings)
    assert report.sent == 1 and report.problems == []
    [msg] = mailbox.to("b@example.org")
    assert msg["Subject"] == "Subject 0" and mailbox.body(msg).strip() == "Body 0"
    [row] = query(db, MailOutbox, MailOutbox.id == mail_id)
    assert row.sent_at is not None and row.attempts == 1 and row.locked_until is None
    assert outbox.deliver_due(db.engine, settings).sent == 0 and len(mailbox.messages) == 1
    assert _sample("mitmachen_mails_sent_total") == sent_before + 1


def test_request_mail_arrives_right_after_the_response(client, db, mailbox, make_user):
    """Mail queued by a request is handed to the SMTP server after the response, not by a later poll."""
    user = make_user(email="forgot@example.org")
    response = client.post_form("/password/forgot", {"email": user.email})
    assert response.status_code in (200, 303)
    assert len(mailbox.to(user.email)) == 1
    [row] = query(db, MailOutbox)
    assert row.sent_at is not None and row.to == user.email


def test_smtp_down_request_succeeds_mail_waits_then_goes_out(db, mailbox, make_user, smtp_settings):
    """A mail-server outage neither fails the request nor loses the mail; it is sent once the server is
    back, exactly once."""
    from starlette.testclient import TestClient

    from app.main import create_app

    dead = make_settings(db, **{**smtp_settings, "smtp_port": free_port()})
    user = make_user(email="outage@example.org")
    with TestClient(create_app(dead, engine=db.engine), follow_redirects=False) as c:
        token = c.get("/password/forgot").text.split('name="csrf_token" value="')[1].split('"')[0]
        response = c.post("/password/forgot", data={"csrf_token": token, "email": user.email})
        assert response.status_code in (200, 303)
    assert mailbox.messages == []
    [row] = query(db, MailOutbox)
    assert row.sent_at is None and row.failed_at is None and row.attempts == 1
    assert row.last_error and row.claimed_by is None
    assert row.next_attempt_at > utcnow() + dt.timedelta(seconds=20)  # backoff, not a hot loop
    good = make_settings(db, **smtp_settings)
    assert outbox.deliver_due(db.engine, good).sent == 0  # not due yet
    later = row.next_attempt_at + dt.timedelta(seconds=1)
    assert outbox.deliver_due(db.engine, good, now=later).sent == 1
    assert len(mailbox.to(user.email)) == 1
    assert outbox.deliver_due(db.engine, good, now=later + dt.timedelta(hours=1)).sent == 0
    assert len(mailbox.messages) == 1


def test_backoff_doubles_with_jitter_and_is_capped():
    rng = random.Random(1)
    for attempts, base in [(1, 30), (2, 60), (3, 120), (6, 960)]:
        for _ in range(20):
            assert 0.8 * base <= outbox.backoff(attempts, rng=rng) <= 1.2 * base
    assert outbox.backoff(40, rng=rng) <= 1.2 * outbox.BACKOFF_CAP
    assert len({round(outbox.backoff(3, rng=rng), 3) for _ in range(10)}) > 5  # jitter spreads retries


def test_gives_up_after_max_attempts(db, mailbox, smtp_settings):
    dead = make_settings(db, **{**smtp_settings, "smtp_port": free_port(), "mail_max_attempts": 3})
    failed_before = _sample("mitmachen_mails_failed_total")
    [mail_id] = _queue(db)
    now = utcnow()
    reports = []
    for _ in range(5):
        reports.append(outbox.deliver_due(db.engine, dead, now=now))
        now += dt.timedelta(hours=7)  # past any backoff
    assert [len(r.retrying) for r in reports] == [1, 1, 0, 0, 0]
    assert [len(r.failed) for r in reports] == [0, 0, 1, 0, 0]
    [row] = query(db, MailOutbox, MailOutbox.id == mail_id)
    assert row.failed_at is not None and row.attempts == 3 and row.sent_at is None
    assert _sample("mitmachen_mails_failed_total") == failed_before + 1
    with new_session(db.engine) as s:
        assert outbox.stats(s) == {"pending": 0, "failed": 1}


def test_claims_are_disjoint(db, smtp_settings):
    """Two workers claiming at once never get the same mail (FOR UPDATE SKIP LOCKED on PostgreSQL)."""
    _queue(db, 5)
    w1, first = outbox.claim_due(db.engine, limit=3)
    w2, second = outbox.claim_due(db.engine, limit=3)
    assert len(first) == 3 and len(second) == 2 and not set(first) & set(second)
    assert outbox.claim_due(db.engine)[1] == []  # all leased
    later = utcnow() + dt.timedelta(seconds=outbox.LEASE_SECONDS + 1)
    assert len(outbox.claim_due(db.engine, now=later)[1]) == 5  # a dead worker's lease expires


def test_concurrent_workers_send_each_mail_once(db, mailbox, smtp_settings):
    """CVE-2023-47634 class (races): four loops delivering the same backlog send every mail exactly once."""
    settings = make_settings(db, **smtp_settings)
    ids = _queue(db, 24, to="many@example.org")
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait()
            while outbox.deliver_due(db.engine, settings, limit=3).sent:
                pass
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    subjects = sorted(m["Subject"] for m in mailbox.to("many@example.org"))
    assert subjects == sorted(f"Subject {i}" for i in range(24))
    assert all(r.sent_at is not None and r.attempts == 1 for r in query(db, MailOutbox)) and len(ids) == 24


def test_reserved_mail_is_left_to_its_request_until_the_reservation_expires(db, mailbox, smtp_settings):
    settings = make_settings(db, **smtp_settings)
    with outbox.reserve() as reservation:
        [mail_id] = _queue(db)
    assert reservation.committed == [mail_id]
    assert outbox.deliver_due(db.engine, settings).sent == 0  # the request delivers it, not the loop
    later = utcnow() + dt.timedelta(seconds=outbox.RESERVE_SECONDS + 1)
    assert (
        outbox.deliver_due(db.engine, settings, now=later).sent == 1
    )  # the request died: the loop takes over
    assert outbox.deliver_reserved(db.engine, settings, reservation).sent == 0  # and nothing twice
    assert len(mailbox.messages) == 1


def test_worker_thread_delivers_within_a_second_of_the_commit(db, mailbox, smtp_settings):
    """Unreserved mail (e.g. from a CLI command) wakes the loop; it does not wait for the next poll."""
    settings = make_settings(db, **smtp_settings)
    worker = outbox.OutboxWorker(db.engine, settings, interval=300).start()
    try:
        time.sleep(0.2)  # the first pass found nothing; the loop now sleeps for 300 s unless woken
        start = time.monotonic()
        _queue(db, to="woken@example.org")
        while not mailbox.to("woken@example.org") and time.monotonic() - start < 10:
            time.sleep(0.05)
        assert mailbox.to("woken@example.org") and time.monotonic() - start < 3
    finally:
        worker.stop()
    assert not worker.thread.is_alive()


def test_mail_worker_command_once(db, mailbox, smtp_server, monkeypatch, capsys):
    """`mitmachen mail-worker --once` delivers what is due and says so."""
    from app import cli

    _queue(db, 2, to="cli@example.org")
    for key, value in {
        "DATABASE_URL": db.url,
        "ENVIRONMENT": "development",
        "MAIL_BACKEND": "smtp",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_server[1]),
        "LOG_FORMAT": "text",
    }.items():
        monkeypatch.setenv(key, value)
    assert cli.main(["mail-worker", "--once"]) == 0
    assert "mail: 2 sent, 0 to retry, 0 failed" in capsys.readouterr().out
    assert len(mailbox.to("cli@example.org")) == 2
    monkeypatch.setenv("SMTP_PORT", str(free_port()))
    _queue(db, 1, to="cli@example.org")
    assert cli.main(["mail-worker", "--once"]) == 1


@pytest.mark.parametrize("field", ["to", "subject"])
def test_header_injection_in_queued_mail_is_neutralised(db, mailbox, smtp_settings, field):
    """Line breaks in a recipient or subject cannot add headers (the mail's headers are built safely)."""
    settings = make_settings(db, **smtp_settings)
    values = {"to": "inject@example.org", "subject": "Hi"}
    values[field] += "\r\nBcc: victim@example.org"
    with new_session(db.engine) as s:
        send_mail(s, settings, body="x", **values)
        s.commit()
    outbox.deliver_due(db.engine, settings)
    for msg in mailbox.messages:
        assert msg["Bcc"] is None


def test_delivered_mail_is_purged_after_thirty_days(db, mailbox, smtp_settings):
    """Delivered mail (personal data) is kept 30 days, then deleted; pending and failed mail stays."""
    settings = make_settings(db, **smtp_settings)
    _queue(db, 1)
    outbox.deliver_due(db.engine, settings)
    _queue(db, 1)  # still pending
    assert outbox.purge_sent(db.engine, now=utcnow() + dt.timedelta(days=29)) == 0
    assert outbox.purge_sent(db.engine, now=utcnow() + dt.timedelta(days=31)) == 1
    [left] = query(db, MailOutbox)
    assert left.sent_at is None


def test_old_rate_limit_events_are_purged_after_the_longest_window(db):
    """The mail loop's hourly housekeeping deletes rate-limit events no window can count any more: older
    than a day, or than the longest configured window when that is longer."""
    from app import ratelimit
    from app.models import RateLimitEvent
    from app.settings import Settings

    now = utcnow()
    with new_session(db.engine, write=True) as s:
        for key, age in (("login:ip:1", 0), ("login:ip:2", 3600 * 30), ("login:ip:3", 3600 * 60)):
            s.add(RateLimitEvent(key=key, at=now - dt.timedelta(seconds=age)))
        s.commit()
    assert outbox.rate_limit_keep_seconds(Settings(environment="test")) == ratelimit.KEEP_SECONDS
    longer = Settings(environment="test", rate_limit_login="10/172800")  # a two-day window
    assert outbox.rate_limit_keep_seconds(longer) == 172800
    assert ratelimit.purge(db.engine, outbox.rate_limit_keep_seconds(longer)) == 1
    assert sorted(r.key for r in query(db, RateLimitEvent)) == ["login:ip:1", "login:ip:2"]
    assert ratelimit.purge(db.engine) == 1
    assert [r.key for r in query(db, RateLimitEvent)] == ["login:ip:1"]
