"""Engine, sessions and the column types shared by every package.

SQLite (WAL, foreign keys on) when DATABASE_URL is unset; PostgreSQL through
DATABASE_URL=postgresql+psycopg://... . Timestamps are stored timezone-aware in UTC.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import DateTime, Engine, create_engine, event
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session, SQLModel

from app.settings import Settings


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite has no time zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def make_engine(settings: Settings) -> Engine:
    url = settings.effective_database_url
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (below)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn) -> None:
            # A transaction that will write takes the write lock up front (BEGIN IMMEDIATE): a deferred
            # transaction that reads first and writes later can fail with SQLITE_BUSY_SNAPSHOT when another
            # writer committed in between, which waiting cannot resolve.
            immediate = conn.get_execution_options().get(WRITE_OPTION)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


WRITE_OPTION = "mitmachen_write"


def new_session(engine: Engine, *, write: bool = False) -> Session:
    """A session; ``write=True`` declares up front that the unit of work will write (on SQLite this takes
    the database's write lock at the start, so concurrent writers queue instead of failing)."""
    session = Session(engine, expire_on_commit=False)
    if write:
        session.connection(execution_options={WRITE_OPTION: True})
    return session


# Stable constraint names on every backend (SQLite batch migrations need named constraints).

SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
