"""PostgreSQL's engine: the cursor's cached ``description`` (app/pgdriver.py) answers exactly as psycopg's,
pooled connections are pinged only after sitting idle (app/database.py, ``ping_after_idle``), and replaced
once they are ``RECYCLE_SECONDS`` old, so that their prepared statements are planned again."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app import database


def _columns(description):
    return [(c.name, c.type_code, c.display_size, c.internal_size, c.precision, c.scale) for c in description]


@pytest.fixture
def pg(db):
    if db.backend != "postgresql":
        pytest.skip("psycopg's cursor: PostgreSQL only")
    return db


def test_description_is_psycopgs_for_every_shape(pg):
    import psycopg

    from app.pgdriver import DescribedCursor

    queries = [
        ("SELECT 1 AS a, 'x'::varchar(7) AS b, now() AS c, 1.5::numeric(5, 2) AS d", None),
        ("SELECT %s AS a", (1,)),
        ("SELECT %s AS a", ("text",)),  # same statement, another column type: another shape
        ("SELECT id, token_hash, created_at FROM user_session LIMIT 1", None),
        ("SELECT", None),  # a result without columns
    ]
    raw = pg.engine.raw_connection()
    try:
        conn = raw.dbapi_connection
        assert isinstance(conn.cursor(), DescribedCursor)  # the engine's connections use it
        for query, params in queries * 2:  # the second round is served from the cache
            cached = conn.cursor()
            plain = psycopg.Cursor(conn)
            cached.execute(query, params)
            plain.execute(query, params)
            assert _columns(cached.description) == _columns(plain.description), query
            cached.close()
            plain.close()
        cur = conn.cursor()
        cur.execute("SELECT 1 AS a, 2 AS b")
        cur.description.clear()  # a caller changing its list changes nobody else's
        assert [c.name for c in cur.description] == ["a", "b"]
        cur.execute("SET search_path TO public")  # no result set
        assert cur.description is None
        cur.close()
    finally:
        raw.rollback()
        raw.close()


def test_idle_connections_are_pinged_and_replaced_when_dead(pg, monkeypatch):
    """A connection checked in a moment ago is used as it is (no extra round trip); one idle for longer is
    pinged first, and replaced when the server closed it meanwhile, so the request never sees it."""
    from sqlalchemy import create_engine

    engine = create_engine(pg.url, pool_size=1, max_overflow=0)
    database.ping_after_idle(engine, seconds=0.2)
    pings: list[object] = []
    real_ping = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda conn: pings.append(conn) or real_ping(conn))
    try:
        with engine.connect() as conn:
            first_pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar() == first_pid
        assert pings == []  # in use a moment ago: not pinged
        with pg.engine.connect() as admin:  # the server ends the idle connection
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first_pid})
            admin.commit()
        import time

        time.sleep(0.3)
        with engine.connect() as conn:  # pinged, found dead, replaced: the statement just works
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != first_pid
        assert len(pings) == 1
    finally:
        engine.dispose()


def test_old_connections_are_replaced_so_statements_are_planned_again(pg, monkeypatch):
    """A prepared statement keeps the generic plan PostgreSQL made for the tables as they were then; a
    pooled connection is therefore replaced once it is RECYCLE_SECONDS old, and the new one prepares and
    plans its statements afresh."""
    import time

    from app.settings import Settings

    monkeypatch.setattr(database, "RECYCLE_SECONDS", 1)
    engine = database.make_engine(Settings(environment="development", database_url=pg.url))
    prepared = text("SELECT count(*) FROM pg_prepared_statements")
    try:
        with engine.connect() as conn:
            first_pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
            for _ in range(8):  # psycopg prepares a statement once it has run it five times
                conn.execute(text("SELECT id FROM user_session WHERE token_hash = :t"), {"t": "x"}).all()
            assert conn.execute(prepared).scalar() >= 1
            conn.commit()  # as a unit of work ends (a rollback would make psycopg forget them)
        with engine.connect() as conn:  # young: the same connection, its statements still prepared
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar() == first_pid
            assert conn.execute(prepared).scalar() >= 1
        time.sleep(1.2)
        with engine.connect() as conn:  # old: replaced, nothing prepared yet
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != first_pid
            assert conn.execute(prepared).scalar() == 0
    finally:
        engine.dispose()


def test_a_silent_database_host_times_out(monkeypatch):
    """A host that takes the TCP connection but never answers (a hung server, a full backlog) ends in an
    error after ``CONNECT_TIMEOUT`` seconds, not after TCP's minutes: the worker's loop is held meanwhile."""
    import socket
    import threading
    import time

    from sqlalchemy.exc import OperationalError

    from app.settings import Settings

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # connections complete in the kernel; nobody ever reads or answers them
    port = listener.getsockname()[1]
    monkeypatch.setattr(database, "CONNECT_TIMEOUT", 1)
    settings = Settings(
        environment="development",
        database_url=f"postgresql+psycopg://mitmachen@127.0.0.1:{port}/mitmachen",
    )
    engine = database.make_engine(settings)
    outcome: list[BaseException | None] = []

    def connect() -> None:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            outcome.append(exc)

    try:
        started = time.monotonic()
        attempt = threading.Thread(target=connect, daemon=True)  # without the timeout it would hang
        attempt.start()
        attempt.join(10)
        assert outcome, "the connection attempt still waits after 10 s"
        assert isinstance(outcome[0], OperationalError)
        assert time.monotonic() - started < 5
    finally:
        listener.close()
        if outcome:
            engine.dispose()


def test_the_urls_own_connect_timeout_is_kept(monkeypatch):
    """``?connect_timeout=N`` in DATABASE_URL wins over ``CONNECT_TIMEOUT``; a name that merely contains
    the word does not count as setting it."""
    from app.settings import Settings

    seen: list[dict] = []
    monkeypatch.setattr(database, "create_engine", lambda url, **kw: seen.append(kw["connect_args"]))
    monkeypatch.setattr(database, "ping_after_idle", lambda engine: None)
    for url in (
        "postgresql+psycopg://u@127.0.0.1/db?connect_timeout=30",
        "postgresql+psycopg://u@127.0.0.1/connect_timeout_db",
    ):
        database.make_engine(Settings(environment="development", database_url=url))
    assert "connect_timeout" not in seen[0]
    assert seen[1]["connect_timeout"] == database.CONNECT_TIMEOUT
