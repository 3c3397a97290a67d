"""PostgreSQL's engine: the cursor's cached ``description`` (app/pgdriver.py) answers exactly as psycopg's,
and pooled connections are pinged only after sitting idle (app/database.py, ``ping_after_idle``)."""

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


def _status(session):
    return session.connection().connection.dbapi_connection.info.transaction_status.name


def test_a_read_runs_without_a_transaction_until_it_writes(pg):
    """A read's unit of work on PostgreSQL sends no BEGIN for its plain SELECTs (each sees its own snapshot
    under READ COMMITTED anyway); its first write or locking read opens a transaction, which the session's
    commit or rollback ends, so its writes stay atomic."""
    from sqlalchemy import func, select

    from app.database import needs_transaction, new_session, utcnow
    from app.models import RateLimitEvent

    count = select(func.count()).select_from(RateLimitEvent).where(RateLimitEvent.key.like("lazy:%"))
    with new_session(pg.engine) as s:
        assert s.execute(count).scalar() == 0
        assert _status(s) == "IDLE"  # no BEGIN was sent
        s.execute(RateLimitEvent.__table__.insert(), [{"key": "lazy:1", "at": utcnow()}])
        assert _status(s) == "INTRANS"
        s.execute(RateLimitEvent.__table__.insert(), [{"key": "lazy:2", "at": utcnow()}])
        s.rollback()  # both writes go
    with new_session(pg.engine) as s:
        assert s.execute(count).scalar() == 0
        s.execute(RateLimitEvent.__table__.insert(), [{"key": "lazy:3", "at": utcnow()}])
        s.commit()
    with new_session(pg.engine) as s:
        assert s.execute(count).scalar() == 1
        s.execute(select(RateLimitEvent.id).where(RateLimitEvent.key == "lazy:3").with_for_update())
        assert _status(s) == "INTRANS"  # the row lock lasts until the end of the unit of work
        s.rollback()
    with new_session(pg.engine) as s:
        rows = s.execute(select(RateLimitEvent.id).execution_options(yield_per=10))  # DECLARE … CURSOR
        assert rows.all() and _status(s) == "INTRANS"
        s.rollback()
    with new_session(pg.engine, write=True) as s:
        s.execute(select(RateLimitEvent.id).limit(1))
        assert _status(s) == "INTRANS"  # a write's unit of work begins as before
        s.execute(RateLimitEvent.__table__.delete().where(RateLimitEvent.key.like("lazy:%")))
        s.commit()
    # plain reads, a column whose name merely contains the words; a literal "for update" would count (it
    # only costs a BEGIN)
    assert not needs_transaction("  select 1")
    assert not needs_transaction("SELECT information, updated_for FROM t")
    for statement in (
        "SELECT 1 FROM t FOR UPDATE",
        "select 1 for share",
        "SELECT 1 FOR NO KEY UPDATE",
        "WITH x AS (INSERT INTO t VALUES (1)) SELECT 1",
        "UPDATE t SET a = 1",
        "SAVEPOINT s",
    ):
        assert needs_transaction(statement), statement


def test_the_audit_logs_own_statements_open_the_transaction(pg):
    """voting/audit.py writes on the driver's cursor, past SQLAlchemy's events: it opens the transaction
    itself, so an append in a read's unit of work is rolled back with it."""
    from app.database import new_session
    from voting import audit

    with new_session(pg.engine) as s:
        assert audit.size(s, "lazy") == 0 and _status(s) == "IDLE"
        audit.append(s, log_id="lazy", entry_type="test.entry", payload={})
        assert _status(s) == "INTRANS"
        s.rollback()
    with new_session(pg.engine) as s:
        assert audit.size(s, "lazy") == 0
