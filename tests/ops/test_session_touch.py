"""On SQLite a signed-in page view (GET) never writes inside its read transaction: the session's "last
seen" touch (once a minute) is recorded in its own short write transaction after the response. Under voting
load on SQLite the in-transaction touch failed (SQLITE_BUSY_SNAPSHOT, or a wait behind every queued writer)
and signed-in page views answered 503 (bench/load_ballots.py, issue #9). PostgreSQL has no such lock: the
touch goes out with the request's own commit, one transaction instead of two."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import event, update

from app.database import new_session, utcnow
from app.models import UserSession
from tests.conftest import query


def test_page_view_touches_the_session_once(db, client, make_user, login):
    user = make_user()
    login(user)
    old = utcnow() - dt.timedelta(minutes=5)
    with new_session(db.engine) as s:
        s.execute(update(UserSession).values(last_seen_at=old))
        s.commit()
    statements: list[tuple[str, bool, int]] = []
    begins: list[int] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        writing = bool(conn.get_execution_options().get("mitmachen_write"))
        statements.append((statement.split()[0].upper(), writing, len(begins)))

    def began(conn):
        begins.append(1)

    event.listen(db.engine, "before_cursor_execute", record)
    event.listen(db.engine, "begin", began)
    try:
        assert client.get("/account").status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
        event.remove(db.engine, "begin", began)
    (record_,) = query(db, UserSession, UserSession.user_id == user.id)
    assert utcnow() - record_.last_seen_at < dt.timedelta(seconds=60)  # still touched
    updates = [(writing, transaction) for verb, writing, transaction in statements if verb == "UPDATE"]
    if db.backend == "sqlite":
        assert updates == [(True, 2)]  # once, in a write transaction of its own after the request's
        assert len(begins) == 2
    else:
        assert updates == [(False, 1)]  # once, in the request's own transaction
        assert len(begins) == 1


def test_a_recent_session_is_not_touched_again(db, client, make_user, login):
    user = make_user()
    login(user)
    (before,) = query(db, UserSession, UserSession.user_id == user.id)
    assert client.get("/account").status_code == 200
    (after,) = query(db, UserSession, UserSession.user_id == user.id)
    assert after.last_seen_at == before.last_seen_at
