"""A database that cannot be reached gives 503 pages, not tracebacks (issue #9), in-process: the app's
engine points at a closed port of 127.0.0.1, so every connection attempt is refused at once. The real
outage and recovery with running servers are in test_faults.py."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from app.database import make_engine
from app.main import create_app
from app.settings import Settings
from app.web import database_unavailable
from tests.conftest import free_port

LEAKS = ("Traceback", "OperationalError", "psycopg", "sqlalchemy", "Connection refused", 'File "')


@pytest.fixture
def dead_client(tmp_path):
    url = f"postgresql+psycopg://mitmachen@127.0.0.1:{free_port()}/nowhere?connect_timeout=2"
    settings = Settings(
        environment="test",
        secret_key="test-secret-key-" + "x" * 32,
        database_url=url,
        data_dir=str(tmp_path),
        base_url="http://testserver",
        mail_backend="log",
    ).validate()
    engine = make_engine(settings)
    app = create_app(settings, engine=engine)
    with TestClient(app, base_url="http://testserver", raise_server_exceptions=False) as client:
        yield client
    engine.dispose()


def _no_leak(body: str) -> None:
    for leak in LEAKS:
        assert leak not in body, leak


@pytest.mark.parametrize("path", ["/", "/proposals", "/processes", "/login"])
def test_pages_answer_503_with_the_generic_error_page(dead_client, path):
    """HTML pages: 503, Retry-After, the generic error page in the visitor's language, no detail of the
    failure."""
    dead_client.cookies.set("lang", "en")
    response = dead_client.get(path)
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"].startswith("text/html")
    assert "Temporarily unavailable" in response.text and "try again" in response.text
    _no_leak(response.text)


def test_api_answers_503_with_a_json_error(dead_client):
    response = dead_client.get("/api/v1/proposals")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
    assert int(response.headers["retry-after"]) > 0
    _no_leak(response.text)


def test_form_posts_answer_503(dead_client):
    """A write (its unit of work takes the connection first) fails the same way, after the CSRF check."""
    page = dead_client.get("/login")
    match = re.search(r'X-CSRF-Token&#34;: &#34;([^&]+)&#34;|"X-CSRF-Token": "([^"]+)"', page.text)
    match = match or re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, "the 503 page carries the session's CSRF token like every page"
    token = next(g for g in match.groups() if g)
    response = dead_client.post(
        "/login", data={"email": "a@example.org", "password": "x" * 12, "csrf_token": token}
    )
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0
    _no_leak(response.text)


def test_only_connection_errors_count_as_unavailable():
    from sqlalchemy import exc as sa_exc

    refused = sa_exc.OperationalError("SELECT 1", {}, Exception("connection refused"))
    assert database_unavailable(refused)
    assert database_unavailable(sa_exc.TimeoutError("pool exhausted"))
    assert database_unavailable(sa_exc.InterfaceError("SELECT 1", {}, Exception("closed")))
    assert not database_unavailable(sa_exc.IntegrityError("INSERT", {}, Exception("duplicate")))
    assert not database_unavailable(ValueError("bug"))
