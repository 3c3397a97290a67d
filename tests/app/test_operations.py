"""Production operation: rate limits in Redis or the database (same behaviour, shared by every worker),
the admin's mail settings (encrypted password, never shown back, test mail through the outbox), and
`mitmachen serve --workers 2` answering /healthz, /readyz and /metrics."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from app import outbox, ratelimit
from app.database import new_session
from app.mail_settings import decrypt, effective_config
from app.ops_models import MailOutbox, SiteSetting
from app.ratelimit import RateLimited, check_and_hit
from tests.conftest import PASSWORD, free_port, make_settings, query

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
ROOT = Path(__file__).resolve().parents[2]


def _redis_backend() -> ratelimit.RedisBackend:
    import redis

    backend = ratelimit.RedisBackend(REDIS_URL, prefix=f"mitmachen-test:{uuid.uuid4().hex}:")
    try:
        backend.client.ping()
    except redis.RedisError:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"Redis not reachable at {REDIS_URL}")
    return backend


@pytest.fixture(params=["database", "redis"])
def limiter(request, db):
    """check_and_hit bound to one backend; the same tests run against both."""
    backend = _redis_backend() if request.param == "redis" else None

    def hit(keys, limit=3, window=60):
        with new_session(db.engine) as s:
            try:
                check_and_hit(s, keys, limit=limit, window_seconds=window, backend=backend)
            finally:
                s.commit()

    yield hit
    if backend is not None:
        for key in backend.client.scan_iter(backend.prefix + "*"):
            backend.client.delete(key)


def test_limit_window_and_keys(limiter):
    """ASVS V2.4.1, V6.3.1: the (limit+1)-th attempt in the window is refused with Retry-After; other keys
    are unaffected."""
    for _ in range(3):
        limiter(["login:ip:1.2.3.4"])
    with pytest.raises(RateLimited) as exc:
        limiter(["login:ip:1.2.3.4"])
    assert 55 <= exc.value.retry_after <= 60
    limiter(["login:ip:5.6.7.8"])


def test_blocked_attempts_are_not_counted_and_all_keys_checked(limiter):
    limiter(["a", "b"])
    limiter(["b"])
    with pytest.raises(RateLimited):
        limiter(["a", "b"], limit=2)  # b is full: nothing is recorded, not even under a
    limiter(["a"], limit=2)  # a has 1 attempt, so one more is fine
    with pytest.raises(RateLimited):
        limiter(["a"], limit=2)


def test_one_key_counts_and_records_in_one_statement(db):
    """The single-key path (the ballot cast's per-account limit) records an attempt only below the limit
    and refuses the next one with a Retry-After, without recording it."""
    from app.models import RateLimitEvent

    statements: list[str] = []
    with new_session(db.engine) as s:
        from sqlalchemy import event

        def seen(conn, cursor, statement, *args):
            if statement.lstrip().upper().startswith(("SELECT", "INSERT")):  # not SQLite's BEGIN
                statements.append(statement)

        event.listen(db.engine, "before_cursor_execute", seen)
        try:
            for _ in range(3):
                check_and_hit(s, ["ballot-cast:acct:7"], limit=3, window_seconds=3600, backend=None)
            assert len(statements) == 3  # one statement per accepted attempt
            with pytest.raises(RateLimited) as exc:
                check_and_hit(s, ["ballot-cast:acct:7"], limit=3, window_seconds=3600, backend=None)
        finally:
            event.remove(db.engine, "before_cursor_execute", seen)
        assert 3590 <= exc.value.retry_after <= 3600
        s.commit()
    assert len(query(db, RateLimitEvent, RateLimitEvent.key == "ballot-cast:acct:7")) == 3


def test_window_slides(limiter):
    for _ in range(2):
        limiter(["slide"], limit=2, window=1)
    with pytest.raises(RateLimited) as exc:
        limiter(["slide"], limit=2, window=1)
    assert exc.value.retry_after == 1
    time.sleep(1.1)
    limiter(["slide"], limit=2, window=1)


def test_redis_limit_is_atomic_across_concurrent_workers():
    """Twenty concurrent attempts against a limit of five: exactly five get through (one Lua script)."""
    backend = _redis_backend()
    passed: list[int] = []
    barrier = threading.Barrier(20)

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            backend.hit(["race"], limit=5, window_seconds=60)
            passed.append(i)
        except RateLimited:
            pass

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(passed) == 5
    backend.client.delete(backend.prefix + "race")


def test_redis_unreachable_falls_back_to_database(db):
    """A Redis outage never switches rate limits off: the database counts instead."""
    dead = ratelimit.RedisBackend(f"redis://127.0.0.1:{free_port()}/0")
    with new_session(db.engine) as s:
        for _ in range(2):
            check_and_hit(s, ["fallback"], limit=2, window_seconds=60, backend=dead)
        with pytest.raises(RateLimited):
            check_and_hit(s, ["fallback"], limit=2, window_seconds=60, backend=dead)


@pytest.mark.xdist_group("redis-app-keys")  # uses the app's real key prefix: never both backends at once
def test_app_uses_redis_when_configured(db):
    """With REDIS_URL set, login attempts are counted in Redis, not in the database."""
    backend = _redis_backend()
    settings = make_settings(db, redis_url=REDIS_URL, rate_limit_enabled=True)
    from starlette.testclient import TestClient

    from app.main import create_app
    from app.models import RateLimitEvent

    app = create_app(settings, engine=db.engine)
    try:
        with TestClient(app, follow_redirects=False) as c:
            token = c.get("/login").text.split('name="csrf_token" value="')[1].split('"')[0]
            response = c.post(
                "/login", data={"csrf_token": token, "email": "nobody@example.org", "password": "x"}
            )
            assert response.status_code in (200, 400)
        assert query(db, RateLimitEvent) == []
        keys = [k.decode() for k in backend.client.scan_iter(ratelimit.REDIS_PREFIX + "login:*")]
        assert any("nobody@example.org" in k or ":ip:" in k for k in keys)
    finally:
        for key in backend.client.scan_iter(ratelimit.REDIS_PREFIX + "login:*"):
            backend.client.delete(key)
        ratelimit.configure("")


# --- admin mail settings ---------------------------------------------------------------------------------

VALID = {
    "backend": "smtp",
    "smtp_host": "127.0.0.1",
    "smtp_port": "2525",
    "smtp_tls": "none",
    "smtp_user": "mailer",
    "smtp_password": "s3cret-Pässword",
    "sender": "Mitmachen Wuppertal <noreply@wuppertal.example>",
}


@pytest.mark.parametrize("role", ["anonymous", "resident", "moderator", "staff"])
def test_mail_settings_admin_only(client, db, make_user, login, role):
    """CVE-2023-36465: the mail settings, test mail and retry are for admins only."""
    if role != "anonymous":
        login(make_user(role))
    response = client.get("/admin/mail")
    assert response.status_code == (303 if role == "anonymous" else 403)
    token = client.csrf()
    for path, data in [
        ("/admin/mail", VALID),
        ("/admin/mail/test", {"to": "x@example.org"}),
        ("/admin/mail/retry", {}),
        ("/admin/mail/reset", {}),
    ]:
        response = client.post(path, data={"csrf_token": token, **data})
        assert response.status_code in ((303,) if role == "anonymous" else (403,)), path
    assert query(db, SiteSetting) == [] and query(db, MailOutbox) == []


def test_mail_settings_need_csrf(client, db, make_user, login):
    """CVE-2023-47635: no unsafe request without the token, admin or not."""
    login(make_user("admin"))
    assert client.post("/admin/mail", data=VALID).status_code == 403
    assert client.post("/admin/mail/test", data={"to": "x@example.org"}).status_code == 403
    assert query(db, SiteSetting) == []


def test_save_settings_password_encrypted_never_shown(client, db, make_user, login, app):
    login(make_user("admin", locale="en"))
    page = client.get("/admin/mail")
    assert page.status_code == 200 and "No password is set." in page.text
    response = client.post_form("/admin/mail", VALID)
    assert response.status_code == 303
    rows = {r.key: r.value for r in query(db, SiteSetting)}
    assert rows["mail.smtp_host"] == "127.0.0.1" and rows["mail.smtp_port"] == "2525"
    assert VALID["smtp_password"] not in rows["mail.smtp_password"]  # encrypted at rest
    settings = app.state.settings
    assert decrypt(settings, rows["mail.smtp_password"]) == VALID["smtp_password"]
    page = client.get("/admin/mail").text
    assert VALID["smtp_password"] not in page and rows["mail.smtp_password"] not in page
    assert "A password is stored (encrypted)" in page and 'value="mailer"' in page
    # empty password field: unchanged
    client.post_form(
        "/admin/mail", {**VALID, "smtp_password": "", "smtp_port": "587", "smtp_tls": "starttls"}
    )
    with new_session(db.engine) as s:
        config = effective_config(s, settings)
    assert config.password == VALID["smtp_password"] and config.port == 587 and config.tls == "starttls"
    # clear
    client.post_form("/admin/mail", {**VALID, "smtp_password": "", "clear_password": "on"})
    with new_session(db.engine) as s:
        assert effective_config(s, settings).password == ""
    # another SECRET_KEY cannot read it
    other = make_settings(db, secret_key="another-secret-key-" + "y" * 32)
    client.post_form("/admin/mail", VALID)
    stored = {r.key: r.value for r in query(db, SiteSetting)}["mail.smtp_password"]
    assert decrypt(other, stored) is None
    # back to the environment's settings
    assert client.post_form("/admin/mail/reset").status_code == 303
    assert query(db, SiteSetting) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("smtp_port", "0"),
        ("smtp_port", "70000"),
        ("smtp_port", "abc"),
        ("smtp_host", "mail.example.org\r\nX: y"),
        ("smtp_host", "bad host"),
        ("smtp_tls", "tls1.0"),
        ("backend", "sendmail"),
        ("sender", "no address"),
        ("sender", "Evil <a@example.org>\r\nBcc: x@example.org"),
        ("smtp_user", "user\nname"),
        ("smtp_password", "x" * 501),
    ],
)
def test_invalid_mail_settings_rejected(client, db, make_user, login, field, value):
    """ASVS V2.2.1: positive validation; the message stands next to the field; nothing is saved."""
    login(make_user("admin"))
    response = client.post_form("/admin/mail", {**VALID, field: value})
    assert response.status_code == 400
    assert f'id="e-{field}"' in response.text
    assert query(db, SiteSetting) == []
    if field == "smtp_password":
        assert "x" * 501 not in response.text


def test_password_and_clear_together_rejected(client, db, make_user, login):
    login(make_user("admin"))
    response = client.post_form("/admin/mail", {**VALID, "clear_password": "on"})
    assert response.status_code == 400 and 'id="e-smtp_password"' in response.text


def test_test_mail_goes_through_the_outbox_with_the_admins_settings(db, mailbox, make_user, smtp_server):
    """The environment points at a dead port; the admin's settings (the SMTP sink) win; the test mail is
    queued in the outbox and delivered right after the request."""
    from app.main import create_app
    from tests.conftest import Client

    dead = make_settings(db, mail_backend="smtp", smtp_host="127.0.0.1", smtp_port=free_port())
    admin = make_user("admin", email="admin@example.org", locale="en")
    with Client(
        create_app(dead, engine=db.engine), base_url="http://testserver", follow_redirects=False
    ) as c:
        c.post_form("/login", {"email": admin.email, "password": PASSWORD})
        assert c.post_form("/admin/mail/test", {"to": "first@example.org"}).status_code == 303
        assert mailbox.messages == []  # the environment's server is down: queued, retried later
        page = c.get("/admin/mail").text
        assert "first@example.org" in page and "Connection refused" in page
        settings = {**VALID, "smtp_port": str(smtp_server[1]), "smtp_user": "", "smtp_password": ""}
        assert c.post_form("/admin/mail", settings).status_code == 303
        assert c.post_form("/admin/mail/test", {"to": "second@example.org"}).status_code == 303
        [msg] = mailbox.to("second@example.org")
        assert msg["From"] == VALID["sender"] and "mitmachen" in mailbox.body(msg).lower()
        assert c.post_form("/admin/mail/test", {"to": "not an address"}).status_code == 400


def test_failed_mails_shown_and_retried(client, db, mailbox, make_user, login, smtp_settings):
    with new_session(db.engine) as s:
        from app.database import utcnow

        s.add(
            MailOutbox(
                to="gave-up@example.org",
                subject="S",
                body="B",
                attempts=10,
                failed_at=utcnow(),
                last_error="SMTPRecipientsRefused",
            )
        )
        s.commit()
    login(make_user("admin"))
    page = client.get("/admin/mail").text
    assert "gave-up@example.org" in page and "SMTPRecipientsRefused" in page
    with new_session(db.engine) as s:
        assert outbox.stats(s) == {"pending": 0, "failed": 1}
    assert client.post_form("/admin/mail/retry").status_code == 303
    # the retry wakes this worker's outbox loop: the mail goes out at once, exactly once
    deadline = time.monotonic() + 10
    while query(db, MailOutbox)[0].sent_at is None and time.monotonic() < deadline:
        time.sleep(0.05)  # (the row is marked sent just after the SMTP server took the mail)
    assert len(mailbox.to("gave-up@example.org")) == 1
    [row] = query(db, MailOutbox)
    assert row.failed_at is None and row.sent_at is not None and row.attempts == 1
    assert outbox.deliver_due(db.engine, make_settings(db, **smtp_settings)).sent == 0


# --- mitmachen serve --workers 2 ------------------------------------------------------------------------


def test_serve_with_two_workers(tmp_path):
    """`mitmachen serve --workers 2`: both workers share metrics (multiprocess mode); /healthz, /readyz and
    /metrics answer on 127.0.0.1; logs are JSON lines; the process stops on SIGTERM."""
    exe = shutil.which("mitmachen", path=str(Path(sys.executable).parent)) or "mitmachen"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.sqlite3'}",
        "DATA_DIR": str(tmp_path),
        "ENVIRONMENT": "development",
        "LOG_FORMAT": "json",
        "MAIL_OUTBOX_INTERVAL": "0",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    subprocess.run([exe, "migrate"], env=env, check=True, capture_output=True, timeout=120)
    port = free_port()
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [exe, "serve", "--workers", "2", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.3)
        assert httpx.get(base + "/readyz", timeout=10).json() == {"status": "ok", "reason": "ok"}
        for _ in range(6):
            httpx.get(base + "/healthz", timeout=10)
        text = httpx.get(base + "/metrics", timeout=10).text
        sample = 'mitmachen_http_requests_total{method="GET",route="/healthz",status="200"} '
        assert sample in text
        count = float(text.split(sample)[1].split()[0])
        assert count >= 7  # summed over the workers
        assert (
            httpx.get(base + "/metrics", headers={"X-Forwarded-For": "203.0.113.1"}, timeout=10).status_code
            == 404
        )
        assert "x-request-id" in httpx.get(base + "/healthz", timeout=10).headers
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    import json

    lines = [line for line in log_path.read_text().splitlines() if line.startswith("{")]
    access = [json.loads(line) for line in lines if '"mitmachen.access"' in line]
    assert access and all(entry["request_id"] for entry in access)
