"""app.database.begin_write: a unit of work that started as a read turns into a write one before its first
write (SQLite: the read transaction ends, BEGIN IMMEDIATE through the write gate; PostgreSQL: nothing to
do), keeps what it read, refuses pending ORM changes, and leaves a transaction that already wrote alone."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, select

from app.database import begin_write, new_session, utcnow
from app.models import RateLimitEvent, User
from tests.conftest import query


def test_a_read_becomes_a_write_and_keeps_what_it_read(db, make_user):
    user = make_user()
    with new_session(db.engine) as s:
        loaded = s.get(User, user.id)
        begin_write(s)
        begin_write(s)  # a second call changes nothing
        assert s.get(User, user.id) is loaded and loaded.email == user.email
        s.execute(insert(RateLimitEvent.__table__).values(key="begin-write", at=utcnow()))
        s.commit()
    assert [r.key for r in query(db, RateLimitEvent)] == ["begin-write"]


def test_pending_changes_are_refused(db, make_user):
    user = make_user()
    with new_session(db.engine) as s:
        s.get(User, user.id).display_name = "Geändert"
        if s.get_bind().dialect.name == "sqlite":
            with pytest.raises(RuntimeError):
                begin_write(s)
        else:
            begin_write(s)  # PostgreSQL has no write lock to take: nothing to refuse
        s.rollback()


def test_a_transaction_that_already_wrote_is_not_committed_early(db):
    with new_session(db.engine) as s:
        s.execute(select(RateLimitEvent.id)).all()
        s.execute(insert(RateLimitEvent.__table__).values(key="early", at=utcnow()))
        begin_write(s)  # it holds the write lock already: no commit in between
        s.rollback()
    assert query(db, RateLimitEvent) == []


def test_a_get_that_writes_after_another_writer_committed_is_run_again_as_a_write(app, db):
    """SQLite refuses a write inside a read transaction when another writer committed after the read began
    (SQLITE_BUSY_SNAPSHOT); a GET that writes (a mailed link, a sign-in through a provider) is then run once
    more as a write from the start instead of answering 503, with the session as it came in."""
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from app.web import view
    from tests.conftest import Client

    attempts: list[dict] = []

    def handler(request, db_):
        attempts.append(dict(request.session))
        request.session["seen"] = len(attempts)
        db_.execute(select(RateLimitEvent.id)).all()  # the read transaction's snapshot begins
        if len(attempts) == 1:  # another writer commits meanwhile
            with new_session(db.engine, write=True) as other:
                other.execute(insert(RateLimitEvent.__table__).values(key="other", at=utcnow()))
                other.commit()
        db_.execute(insert(RateLimitEvent.__table__).values(key="mine", at=utcnow()))
        return PlainTextResponse(f"attempt {len(attempts)}")

    app.router.routes.append(Route("/_test/get-that-writes", view(handler)))
    with Client(app, base_url="http://testserver") as client:
        response = client.get("/_test/get-that-writes")
    assert response.status_code == 200
    keys = sorted(r.key for r in query(db, RateLimitEvent))
    if db.engine.dialect.name == "sqlite":
        assert response.text == "attempt 2" and keys == ["mine", "other"]
        assert attempts[1] == attempts[0]  # the retry saw the session as it came in
    else:  # PostgreSQL's read committed: no conflict, no retry
        assert response.text == "attempt 1" and keys == ["mine", "other"]
