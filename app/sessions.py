"""Revocable sessions: the signed cookie holds a random token; the server keeps its hash in
``user_session`` with idle and absolute timeouts. Logout, password change, role change, suspension and
"sign out everywhere" revoke the records, which a signed cookie alone could never do."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import bindparam, inspect, select, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session
from starlette.background import BackgroundTask, BackgroundTasks
from starlette.responses import Response

from app.database import new_session, utcnow
from app.models import User, UserSession
from app.security import new_token, token_digest
from app.settings import Settings

TOUCH_INTERVAL = dt.timedelta(seconds=60)
log = logging.getLogger("mitmachen.sessions")


def start_session(db: Session, session: dict, user: User, user_agent: str = "") -> UserSession:
    """A fresh session at login (ASVS V7.2.4): the old cookie content, CSRF token included, is dropped."""
    token = new_token()
    record = UserSession(token_hash=token_digest(token), user_id=user.id, user_agent=user_agent[:200])
    db.add(record)
    db.flush()
    session.clear()
    session["sid"] = token
    session["csrf"] = new_token(24)
    return record


def current_record(db: Session, session: dict) -> UserSession | None:
    token = session.get("sid")
    if not isinstance(token, str):
        return None
    return db.execute(
        select(UserSession).where(UserSession.token_hash == token_digest(token))
    ).scalar_one_or_none()


# Built once: every signed-in request runs it.
_SESSION_AND_USER = (
    select(UserSession, User)
    .outerjoin(User, User.id == UserSession.user_id)
    .where(UserSession.token_hash == bindparam("digest"))
)


def load_user(db: Session, session: dict, settings: Settings) -> User | None:
    """The signed-in user, or None when the session is missing, revoked, idle or too old."""
    # The session record and its user in one statement (every signed-in request runs this); the outer join
    # keeps a record whose user is gone, so it is still judged (and timed out) exactly as before.
    token = session.get("sid")
    row = (
        db.execute(_SESSION_AND_USER, {"digest": token_digest(token)}).one_or_none()
        if isinstance(token, str)
        else None
    )
    record = row[0] if row is not None else None
    if record is None:
        session.pop("sid", None)
        return None
    now = utcnow()
    too_idle = now - record.last_seen_at > dt.timedelta(minutes=settings.session_idle_minutes)
    too_old = now - record.created_at > dt.timedelta(hours=settings.session_absolute_hours)
    if record.revoked_at is not None or too_idle or too_old:
        if record.revoked_at is None:
            record.revoked_at = now
            record.revoked_reason = "timeout"
        session.pop("sid", None)
        return None
    user = row[1]
    if user is None or user.is_deleted or user.is_suspended(now):
        session.pop("sid", None)
        return None
    if now - record.last_seen_at > TOUCH_INTERVAL:
        record.last_seen_at = now
    return user


def end_session(db: Session, session: dict) -> None:
    record = current_record(db, session)
    if record is not None and record.revoked_at is None:
        record.revoked_at = utcnow()
        record.revoked_reason = "logout"
    session.clear()


def revoke_all(db: Session, user_id: int, reason: str, *, keep: UserSession | None = None) -> int:
    """Revoke every active session of a user (optionally keeping the current one)."""
    stmt = (
        update(UserSession)
        .where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )
    if keep is not None:
        stmt = stmt.where(UserSession.id != keep.id)
    return db.execute(stmt).rowcount or 0


def active_sessions(db: Session, user_id: int) -> list[UserSession]:
    return list(
        db.execute(
            select(UserSession)
            .where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
            .order_by(UserSession.last_seen_at.desc())
        ).scalars()
    )


def defer_touch(db: Session) -> tuple[int, Any] | None:
    """Take the session's "last seen" touch (``load_user``, once a minute) out of a read's transaction.

    A GET runs in a read transaction; a write in it has to upgrade to SQLite's write lock, which fails at
    once (SQLITE_BUSY_SNAPSHOT) when another writer committed meanwhile, or waits behind every queued
    writer: under voting load signed-in page views answered 503. The touch is done after the response
    instead (``touch_after``); returns (session id, new time) when there was one.

    SQLite only: on PostgreSQL a read transaction may write, and the touch is flushed with the request's
    own commit (a transaction of its own cost two round trips and a commit more: a third of the ballots
    of a ``bench/load_ballots.py`` run paid them)."""
    if db.get_bind().dialect.name != "sqlite":
        return None
    for obj in list(db.dirty):
        if not isinstance(obj, UserSession):
            continue
        state = inspect(obj)
        changed = {attr.key for attr in state.attrs if attr.history.has_changes()}
        if changed != {"last_seen_at"}:
            continue
        history = state.attrs.last_seen_at.history
        if not history.deleted:
            continue
        set_committed_value(obj, "last_seen_at", history.deleted[0])
        return int(obj.id), history.added[0]
    return None


def touch_after(response: Response, engine: Any, session_id: int, when: Any) -> None:
    """Record the deferred touch in its own short write transaction once the response is sent (best
    effort: a failure only means the next request touches again)."""

    def touch() -> None:
        try:
            with new_session(engine, write=True) as db:
                db.execute(
                    update(UserSession)
                    .where(UserSession.id == session_id, UserSession.last_seen_at < when)
                    .values(last_seen_at=when)
                )
                db.commit()
        except Exception:  # noqa: BLE001 - best effort, see above
            log.debug("session touch failed", exc_info=True)

    task = BackgroundTask(touch)
    response.background = BackgroundTasks([response.background, task]) if response.background else task
