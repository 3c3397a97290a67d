"""Operations endpoints and logs: /healthz, /readyz, the protected /metrics, request ids, JSON access
logs safe against log injection, and forwarded headers trusted only from TRUSTED_PROXIES."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import create_engine
from starlette.testclient import TestClient

from app import metrics
from app.database import new_session
from app.logging_setup import JsonFormatter, RequestIdFilter
from app.main import create_app
from app.migrations import upgrade
from tests.conftest import make_settings

TOKEN = "metrics-token-0123456789abcdef"


def _client(db, smtp_settings, *, peer=("testclient", 50000), **overrides) -> TestClient:
    app = create_app(make_settings(db, **{**smtp_settings, **overrides}), engine=db.engine)
    return TestClient(app, base_url="http://testserver", follow_redirects=False, client=peer)


@pytest.fixture
def json_log():
    """Every log line of the app as parsed JSON, written by the production formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)

    def lines() -> list[dict]:
        raw = stream.getvalue().splitlines()
        return [json.loads(line) for line in raw]  # every physical line is one whole JSON object

    yield lines
    root.removeHandler(handler)
    root.setLevel(old_level)


def test_healthz_and_readyz(client):
    assert client.get("/healthz").text == "ok"
    response = client.get("/readyz")
    assert response.status_code == 200 and response.json() == {"status": "ok", "reason": "ok"}
    assert response.headers["cache-control"] == "no-store"


def test_readyz_503_when_database_unreachable(db, smtp_settings, tmp_path):
    broken = create_engine(f"sqlite:///{tmp_path / 'missing-dir' / 'x.sqlite3'}")
    app = create_app(make_settings(db, **smtp_settings), engine=broken)
    with TestClient(app) as c:
        assert c.get("/healthz").status_code == 200  # the process is up
        response = c.get("/readyz")
    assert response.status_code == 503 and response.json()["reason"] == "database unreachable"


def test_readyz_503_when_migrations_are_behind(db, smtp_settings, tmp_path):
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    upgrade(url, "0009")
    engine = create_engine(url)
    app = create_app(make_settings(db, **smtp_settings, mail_outbox_interval=0), engine=engine)
    with TestClient(app) as c:
        response = c.get("/readyz")
    assert response.status_code == 503
    assert "0009" in response.json()["reason"] and "mitmachen migrate" in response.json()["reason"]
    upgrade(url)
    with TestClient(app) as c:
        assert c.get("/readyz").status_code == 200
    engine.dispose()


@pytest.mark.parametrize(
    ("peer", "headers", "overrides", "status"),
    [
        (("127.0.0.1", 1234), {}, {}, 200),
        (("::1", 1234), {}, {}, 200),
        (("203.0.113.9", 1234), {}, {}, 404),
        (("testclient", 50000), {}, {}, 404),
        # through a reverse proxy on the same host: the proxy's loopback address must not open the door
        (("127.0.0.1", 1234), {"X-Forwarded-For": "203.0.113.9"}, {}, 404),
        (("127.0.0.1", 1234), {"X-Real-IP": "203.0.113.9"}, {}, 404),
        (("203.0.113.9", 1234), {}, {"metrics_allow": "203.0.113.0/24"}, 200),
        (("203.0.113.9", 1234), {"Authorization": f"Bearer {TOKEN}"}, {"metrics_token": TOKEN}, 200),
        (
            ("203.0.113.9", 1234),
            {"Authorization": "Bearer wrong-token-0123456789"},
            {"metrics_token": TOKEN},
            404,
        ),
        (("203.0.113.9", 1234), {"Authorization": f"Bearer {TOKEN}"}, {}, 404),  # no token configured
    ],
)
def test_metrics_are_not_public(db, smtp_settings, peer, headers, overrides, status):
    """ASVS V13.4.5: /metrics only for the allowed addresses (not through the proxy) or with the token."""
    with _client(db, smtp_settings, peer=peer, **overrides) as c:
        response = c.get("/metrics", headers=headers)
    assert response.status_code == status
    if status == 404:
        assert "mitmachen_" not in response.text


def test_metrics_content(db, smtp_settings, make_user):
    with _client(db, smtp_settings, peer=("127.0.0.1", 1)) as c:
        c.get("/proposals")
        c.get("/proposals/999999")
        c.get("/no/such/page")
        text = c.get("/metrics").text
    assert re.search(
        r'mitmachen_http_requests_total\{method="GET",route="/proposals",status="200"\} \d', text
    )
    assert 'route="/proposals/{proposal_id:int}",status="404"' in text
    assert 'route="<unmatched>",status="404"' in text and "/no/such/page" not in text  # bounded labels
    assert 'mitmachen_http_request_duration_seconds_bucket{le="0.1",method="GET",route="/proposals"}' in text
    for name in (
        "mitmachen_mails_queued_total",
        "mitmachen_mails_sent_total",
        "mitmachen_mail_outbox_pending",
    ):
        assert name in text
    assert "mitmachen_ballots_cast_total" in text or "mitmachen_ballots_cast" in text


def test_ballots_cast_counted_only_when_committed(db):
    def value() -> float:
        return REGISTRY.get_sample_value("mitmachen_ballots_cast_total", {"kind": "cast"}) or 0.0

    before = value()
    with new_session(db.engine) as s:
        metrics.ballot_cast(s)
        s.rollback()
    assert value() == before
    with new_session(db.engine) as s:
        metrics.ballot_cast(s)
        s.commit()
    assert value() == before + 1


def test_request_id_generated_and_in_every_log_line(db, smtp_settings, make_user, json_log):
    """ASVS V16.2.1, V16.3.1: who (user_id), what (method, path, status), when (ts), where (ip, route), and
    a request id tying the lines of one request together."""
    user = make_user()
    with _client(db, smtp_settings) as c:
        token = c.get("/login").text.split('name="csrf_token" value="')[1].split('"')[0]
        c.post("/login", data={"csrf_token": token, "email": user.email, "password": "correct horse battery"})
        response = c.get("/account")
    request_id = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    lines = json_log()
    [access] = [x for x in lines if x["logger"] == "mitmachen.access" and x["request_id"] == request_id]
    assert access["method"] == "GET" and access["path"] == "/account" and access["status"] == 200
    assert access["user_id"] == user.id and access["ip"] == "testclient" and access["route"] == "/account"
    assert access["ts"].endswith("+00:00") and access["level"] == "info" and access["duration_ms"] >= 0
    login_lines = [x for x in lines if x["logger"] != "mitmachen.access" and x["request_id"]]
    assert login_lines and all(re.fullmatch(r"[0-9a-f]{32}", x["request_id"]) for x in login_lines)


def test_log_injection_is_escaped(db, smtp_settings, json_log):
    """ASVS V16.4.1: a line break in the path (or any value) cannot start a forged log line."""
    forged = '{"level": "info", "msg": "admin logged in"}'
    with _client(db, smtp_settings) as c:
        c.get("/proposals%0A" + forged.replace(" ", "%20").replace('"', "%22"))
        c.get("/login", headers={"User-Agent": "x\r\n" + forged})
    lines = json_log()  # json.loads on every physical line: no line is the forged one
    assert not any(x.get("msg") == "admin logged in" for x in lines)
    assert any("\n" in x.get("path", "") for x in lines)


def test_request_id_and_client_address_from_trusted_proxy_only(db, smtp_settings, json_log):
    """X-Forwarded-For and X-Request-ID count only from TRUSTED_PROXIES; a request id is sanitised."""
    headers = {"X-Forwarded-For": "198.51.100.7, 10.0.0.5", "X-Request-ID": "proxy-id-123"}
    with _client(db, smtp_settings, trusted_proxies="testclient,10.0.0.0/8") as c:
        trusted = c.get("/proposals", headers=headers)
        bad = c.get("/proposals", headers={"X-Request-ID": "evil\nid with spaces"})
    with _client(db, smtp_settings) as c:
        untrusted = c.get("/proposals", headers=headers)
    assert trusted.headers["x-request-id"] == "proxy-id-123"
    assert re.fullmatch(r"[0-9a-f]{32}", bad.headers["x-request-id"])
    assert untrusted.headers["x-request-id"] != "proxy-id-123"
    access = {x["request_id"]: x for x in json_log() if x["logger"] == "mitmachen.access"}
    assert access["proxy-id-123"]["ip"] == "198.51.100.7"  # right-most address that is not a proxy
    assert access[untrusted.headers["x-request-id"]]["ip"] == "testclient"


def test_error_pages_generic_with_request_id(db, smtp_settings):
    """ASVS V16.5.1: errors show a generic page, never a stack trace; the request id is in the header so
    support can find the log line."""
    with _client(db, smtp_settings) as c:
        response = c.get("/no/such/page")
    assert response.status_code == 404 and "Traceback" not in response.text
    assert response.headers["x-request-id"]


def _failing_client(db, smtp_settings, **kw) -> TestClient:
    """An app with a route (HTML and under /api/) that raises: an unhandled exception."""
    from starlette.routing import Route

    def boom(request):
        raise RuntimeError("boom: secret detail")

    app = create_app(make_settings(db, **smtp_settings), engine=db.engine)
    app.router.routes[0:0] = [Route("/test-boom", boom), Route("/api/v1/test-boom", boom)]
    return TestClient(app, base_url="http://testserver", follow_redirects=False, **kw)


def test_unhandled_error_carries_request_id(db, smtp_settings, json_log):
    """A crash answers 500 with the generic page (JSON under /api/) and the X-Request-ID header; the logged
    traceback and the access line carry that request id, and the traceback is logged once."""
    with _failing_client(db, smtp_settings, raise_server_exceptions=False) as c:
        page = c.get("/test-boom")
        api = c.get("/api/v1/test-boom")
    assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")
    assert "Traceback" not in page.text and "secret detail" not in page.text
    assert api.status_code == 500 and api.json()["error"]["code"] == "error"
    assert "secret detail" not in api.text
    lines = json_log()
    for response in (page, api):
        request_id = response.headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", request_id)
        mine = [x for x in lines if x["request_id"] == request_id]
        [crash] = [x for x in mine if x["msg"].startswith("unhandled error")]
        assert "boom: secret detail" in crash["exc"]
        [access] = [x for x in mine if x["logger"] == "mitmachen.access"]
        assert access["status"] == 500
    assert page.headers["x-request-id"] != api.headers["x-request-id"]


def test_unhandled_error_still_reaches_the_server(db, smtp_settings):
    """The exception is re-raised after the error page (servers log it, test clients raise it)."""
    with _failing_client(db, smtp_settings) as c, pytest.raises(RuntimeError, match="boom"):
        c.get("/test-boom")


def test_denied_access_is_logged_with_who_and_where(db, smtp_settings, make_user, json_log):
    """ASVS V16.3.2: a refused authorisation leaves a log line naming the account, route and address."""
    resident = make_user()
    with _client(db, smtp_settings) as c:
        token = c.get("/login").text.split('name="csrf_token" value="')[1].split('"')[0]
        c.post(
            "/login", data={"csrf_token": token, "email": resident.email, "password": "correct horse battery"}
        )
        response = c.get("/admin/mail")
    assert response.status_code == 403
    [line] = [
        x for x in json_log() if x["request_id"] == response.headers["x-request-id"] and x.get("status")
    ]
    assert line["status"] == 403 and line["user_id"] == resident.id and line["route"] == "/admin/mail"
    assert line["ip"] == "testclient" and line["ts"]
