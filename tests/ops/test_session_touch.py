"""A signed-in page view (GET) never writes inside its read transaction: the session's "last seen" touch
(once a minute) is recorded in its own short write transaction after the response. Under voting load on
SQLite the in-transaction touch failed (SQLITE_BUSY_SNAPSHOT, or a wait behind every queued writer) and
signed-in page views answered 503 (bench/load_ballots.py, issue #9)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import event, update

from app.database import new_session, utcnow
from app.models import UserSession
from tests.conftest import query


def test_page_view_touches_the_session_after_its_read_transaction(db, client, make_user, login):
    user = make_user()
    login(user)
    old = utcnow() - dt.timedelta(minutes=5)
    with new_session(db.engine) as s:
        s.execute(update(UserSession).values(last_seen_at=old))
        s.commit()
    statements: list[tuple[str, bool]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        writing = bool(conn.get_execution_options().get("mitmachen_write"))
        statements.append((statement.split()[0].upper(), writing))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        assert client.get("/account").status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    (record_,) = query(db, UserSession, UserSession.user_id == user.id)
    assert utcnow() - record_.last_seen_at < dt.timedelta(seconds=60)  # still touched
    updates = [writing for verb, writing in statements if verb == "UPDATE"]
    assert updates == [True]  # once, and in a write transaction of its own


def test_a_recent_session_is_not_touched_again(db, client, make_user, login):
    user = make_user()
    login(user)
    (before,) = query(db, UserSession, UserSession.user_id == user.id)
    assert client.get("/account").status_code == 200
    (after,) = query(db, UserSession, UserSession.user_id == user.id)
    assert after.last_seen_at == before.last_seen_at
