"""Shared fixtures: a migrated database per backend, an app and an HTTP client per test, an SMTP sink,
and user factories.

Every test that uses the database runs on SQLite, and on PostgreSQL too when TEST_DATABASE_URL is set
(CI sets it): the ``backend`` fixture is parametrised, so test ids end in ``[sqlite]`` / ``[postgresql]``.
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from argon2 import PasswordHasher
from sqlalchemy import create_engine, make_url, text
from sqlmodel import SQLModel
from starlette.testclient import TestClient

from app import security
from app.database import make_engine, new_session, utcnow
from app.main import create_app, demo_loaders, models_modules
from app.migrations import upgrade
from app.models import Role, User
from app.settings import Settings

# Fast password hashing in tests only (production uses argon2id with the library's defaults).
security._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "").strip()
BACKENDS = ["sqlite"] + (["postgresql"] if TEST_DATABASE_URL else [])
PASSWORD = "correct horse battery"


def pytest_report_header(config) -> str:
    return f"database backends: {', '.join(BACKENDS)}"


@dataclass
class Database:
    backend: str
    url: str
    engine: object
    tables: list[str] = field(default_factory=list)


def _create_pg_database() -> tuple[str, str]:
    base = make_url(TEST_DATABASE_URL)
    name = f"mitmachen_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False), name


def _drop_pg_database(name: str) -> None:
    admin = create_engine(make_url(TEST_DATABASE_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def database(request, tmp_path_factory) -> Iterator[Database]:
    """A migrated database for the whole session, one per backend."""
    import importlib

    for module in models_modules():
        importlib.import_module(module)
    pg_name = None
    if request.param == "postgresql":
        url, pg_name = _create_pg_database()
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
    upgrade(url)
    engine = make_engine(Settings(environment="test", database_url=url))
    tables = [t.name for t in reversed(SQLModel.metadata.sorted_tables)]
    yield Database(request.param, url, engine, tables)
    engine.dispose()
    if pg_name:
        _drop_pg_database(pg_name)


def reset_database(db: Database) -> None:
    """Empty every table, then load the configuration data again (themes, districts, pages)."""
    from app.demo import ensure_pages

    with db.engine.begin() as conn:
        if db.backend == "postgresql":
            conn.execute(
                text("TRUNCATE " + ", ".join(f'"{t}"' for t in db.tables) + " RESTART IDENTITY CASCADE")
            )
        else:
            for table in [*db.tables, "proposal_search"]:
                conn.execute(text(f'DELETE FROM "{table}"'))
    with new_session(db.engine) as session:
        ensure_pages(session)
        for loader in demo_loaders():
            loader(session, None)
        session.commit()


@pytest.fixture
def db(database) -> Database:
    reset_database(database)
    return database


def make_settings(db: Database, **overrides) -> Settings:
    values = dict(
        environment="test",
        secret_key="test-secret-key-" + "x" * 32,
        database_url=db.url,
        base_url="http://testserver",
        mail_backend="log",
        rate_limit_enabled=False,
        page_cache_seconds=0,  # the shared page cache is tested on its own (tests/app/test_pagecache.py)
        # staff log in through the form in most tests; tests of two-factor sign-in switch this on
        two_factor_required_roles="",
    )
    values.update(overrides)
    return Settings(**values).validate()


@pytest.fixture
def settings_overrides() -> dict:
    """Override in a test module to change settings for its app."""
    return {}


@pytest.fixture
def app(db, settings_overrides, smtp_settings):
    return create_app(make_settings(db, **{**smtp_settings, **settings_overrides}), engine=db.engine)


class Client(TestClient):
    """TestClient that knows how to fetch the page's CSRF token."""

    def csrf(self, path: str = "/") -> str:
        html = self.get(path).text
        match = re.search(r'name="csrf_token" value="([^"]+)"', html)
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    def post_form(self, path: str, data: dict | None = None, **kwargs):
        data = dict(data or {})
        data.setdefault("csrf_token", self.csrf())
        return self.post(path, data=data, **kwargs)


@pytest.fixture
def client(app) -> Iterator[Client]:
    with Client(app, base_url="http://testserver", follow_redirects=False) as c:
        yield c


# --- SMTP sink -------------------------------------------------------------------------------------------


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler hook
        msg = message_from_bytes(envelope.content, policy=policy.default)
        with self._lock:
            self.messages.append(msg)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]

    def body(self, msg: EmailMessage) -> str:
        return msg.get_body(preferencelist=("plain",)).get_content()

    def link(self, address: str, path: str, wait: float = 5.0) -> str:
        """The last link to ``path`` mailed to ``address`` (as a path with query). Waits up to ``wait``
        seconds: the outbox sends a request's mail just after the response (app/outbox.py), and a live
        server's browser may be faster."""
        import time

        deadline = time.monotonic() + wait
        while True:
            for msg in reversed(self.to(address)):
                match = re.search(r"https?://[^/\s]+(" + re.escape(path) + r"\S*)", self.body(msg))
                if match:
                    return match.group(1)
            if time.monotonic() > deadline:
                raise AssertionError(f"no mail to {address} with a link to {path}")
            time.sleep(0.05)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def smtp_server():
    import logging

    from aiosmtpd.controller import Controller

    # The sink's thread logs every connection at INFO, also after a test's captured stream was closed
    # ("--- Logging error --- I/O operation on closed file" in the output): its warnings are enough.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


@pytest.fixture
def mailbox(smtp_server) -> Mailbox:
    box, _port = smtp_server
    box.messages.clear()
    return box


@pytest.fixture
def smtp_settings(smtp_server, mailbox) -> dict:
    _box, port = smtp_server
    return {"mail_backend": "smtp", "smtp_host": "127.0.0.1", "smtp_port": port}


# --- users ------------------------------------------------------------------------------------------------


@pytest.fixture
def make_user(db):
    counter = iter(range(1, 10**6))

    def factory(
        role: Role | str = Role.RESIDENT,
        *,
        email: str | None = None,
        confirmed: bool = True,
        password: str = PASSWORD,
        name: str | None = None,
        locale: str = "de",
    ) -> User:
        n = next(counter)
        user = User(
            email=email or f"user{n}@example.org",
            display_name=name or f"User {n}",
            role=Role(role).value,
            password_hash=security.hash_password(password),
            locale=locale,
            email_confirmed_at=utcnow() if confirmed else None,
            password_changed_at=utcnow(),
        )
        with new_session(db.engine) as session:
            session.add(user)
            session.commit()
            session.refresh(user)
        return user

    return factory


@pytest.fixture
def login(client):
    def do(user: User, password: str = PASSWORD, c: Client | None = None):
        c = c or client
        response = c.post_form("/login", {"email": user.email, "password": password})
        assert response.status_code == 303, response.text
        return response

    return do


def query(db: Database, model, *where):
    """Rows of ``model`` in a fresh session (what is really stored)."""
    from sqlalchemy import select

    with new_session(db.engine) as session:
        return list(session.execute(select(model).where(*where)).scalars())
