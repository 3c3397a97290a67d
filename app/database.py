"""Engine, sessions and the column types shared by every package.

SQLite (WAL, foreign keys on) when DATABASE_URL is unset; PostgreSQL through
DATABASE_URL=postgresql+psycopg://... . Timestamps are stored timezone-aware in UTC.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Engine, create_engine, delete, event, make_url, select
from sqlalchemy.exc import DisconnectionError
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
        # As many pooled connections as the thread pool has threads (anyio's default: 40): a unit of work
        # holds its connection while it queues for the write lock, and with fewer connections than threads
        # the readers behind them time out on the pool under load (measured: bench/load_ballots.py).
        pool = {"pool_size": 40, "max_overflow": 10} if path and path != ":memory:" else {}
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **pool)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (below)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        gate = WriteGate(path) if path and path != ":memory:" else None

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn) -> None:
            # A transaction that will write takes the write lock up front (BEGIN IMMEDIATE): a deferred
            # transaction that reads first and writes later can fail with SQLITE_BUSY_SNAPSHOT when another
            # writer committed in between, which waiting cannot resolve.
            immediate = conn.get_execution_options().get(WRITE_OPTION)
            if immediate and gate is not None and gate.enter():
                conn.info[GATE_KEY] = True  # the pool record's info: the gate is left at check-in
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
            conn.info[CHANGES_KEY] = conn.connection.dbapi_connection.total_changes  # see begin_write

        if gate is not None:

            @event.listens_for(engine, "checkin")
            def _sqlite_leave(_dbapi_conn, record) -> None:
                if record.info.pop(GATE_KEY, False):
                    gate.leave()

        return engine
    connect_args: dict[str, Any] = {}
    if url.startswith("postgresql+psycopg"):
        from app.pgdriver import DescribedCursor

        connect_args["cursor_factory"] = DescribedCursor
    if "connect_timeout" not in make_url(url).query:  # unless the deployment's URL sets its own
        connect_args["connect_timeout"] = CONNECT_TIMEOUT
    engine = create_engine(
        url, pool_size=10, max_overflow=10, pool_recycle=RECYCLE_SECONDS, connect_args=connect_args
    )
    ping_after_idle(engine)
    return engine


# Seconds a new PostgreSQL connection may take (libpq's connect_timeout; its default is to wait for as long
# as TCP does, minutes). A unit of work holds its worker's event loop (app/web.py, ``_lane``), so a database
# host that stops answering, rather than refusing, must end in a quick 503, not a stalled worker.
CONNECT_TIMEOUT = 5


# A pooled PostgreSQL connection is replaced once it is this old, so that PostgreSQL plans the app's
# statements again for the tables as they are now. psycopg prepares a statement on the server once a
# connection has run it five times; PostgreSQL then settles on one generic plan, made from the table sizes
# and statistics of that moment, and keeps it for the connection's life (only an ANALYZE of a table it
# reads, which autovacuum runs at most once a minute, makes it plan again). A vote starts with empty
# ballot, link and log tables: plans made then scan them in full, and each receipt read got slower as they
# grew (bench/load_ballots.py, 8,000 ballots: 1.1 ms of database time per receipt read on average, two
# thirds of the database's work; 0.23 ms with this). A new connection costs a few milliseconds of server
# time, every RECYCLE_SECONDS per connection.
RECYCLE_SECONDS = 10


PING_AFTER_IDLE = 1.0  # seconds
IDLE_KEY = "mitmachen_idle_since"


def ping_after_idle(engine: Engine, seconds: float = PING_AFTER_IDLE) -> None:
    """Pessimistic disconnect handling, only where it can matter: a pooled connection that sat idle for
    ``seconds`` or more is pinged when it is checked out (the server may have restarted or closed it
    meanwhile; a dead one is replaced before the request uses it). One that was in use a moment ago is not:
    ``pool_pre_ping`` cost a round trip per unit of work, about a tenth of a ballot's statements on
    PostgreSQL. A connection that breaks anyway (the server died under load) fails its request with a 503
    and SQLAlchemy replaces the pool's connections (app/web.py, ``database_unavailable``)."""

    @event.listens_for(engine, "checkin")
    def _idle_since(_dbapi_conn, record) -> None:
        record.info[IDLE_KEY] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_conn, record, _proxy) -> None:
        since = record.info.get(IDLE_KEY)  # none on a new connection (info goes with the connection)
        if since is None or time.monotonic() - since < seconds:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # any failure of the ping means "replace it"
            raise DisconnectionError(str(exc)) from exc
        if not alive:
            raise DisconnectionError("the connection did not answer")


WRITE_OPTION = "mitmachen_write"
GATE_KEY = "mitmachen_write_gate"
CHANGES_KEY = "mitmachen_changes_at_begin"
GATE_TIMEOUT = 30.0


class WriteGate:
    """Queues the writers of one SQLite file before they ask SQLite for its write lock.

    A writer that finds SQLite's lock taken polls (sleeps 1, 2, 5 … 100 ms and tries again), so under load
    the lock goes to whoever happens to try at the right moment: some writers starve past the 30 s busy
    timeout (measured with bench/load_ballots.py: client timeouts, p99 ~10 s). The gate hands the lock on
    in turn instead: a thread lock inside the process, then ``flock`` on ``<database>-writegate`` across
    the processes (the kernel wakes the next waiter; a killed process releases it). It only orders the
    writers; correctness still rests on BEGIN IMMEDIATE, so a writer that cannot pass the gate within
    ``GATE_TIMEOUT``, or a process that does not use it (a CLI command), falls back to SQLite's waiting."""

    def __init__(self, database_path: str) -> None:
        self.path = f"{database_path}-writegate"
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._pid = 0

    def _file(self) -> int:
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd

    def enter(self) -> bool:
        if not self._lock.acquire(timeout=GATE_TIMEOUT):
            return False
        try:
            fcntl.flock(self._file(), fcntl.LOCK_EX)
        except OSError:
            self._lock.release()
            return False
        return True

    def leave(self) -> None:
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._lock.release()


def new_session(engine: Engine, *, write: bool = False) -> Session:
    """A session; ``write=True`` declares up front that the unit of work will write (on SQLite this takes
    the database's write lock at the start, so concurrent writers queue instead of failing)."""
    session = Session(engine, expire_on_commit=False)
    if write:
        session.info[WRITE_OPTION] = True
        session.connection(execution_options={WRITE_OPTION: True})
    return session


def begin_write(db: Session) -> None:
    """From here on the unit of work writes: on SQLite, end its read transaction (it must not have written
    anything yet) and begin a write one (the gate, then BEGIN IMMEDIATE); elsewhere nothing changes.

    Also for a read's unit of work that must write once (a GET that spends a single-use link,
    app/usedtokens.py): a write inside a read transaction fails at once on SQLite when another writer
    committed since the read began (SQLITE_BUSY_SNAPSHOT), which waiting cannot resolve.

    A unit of work opened with ``new_session(write=False)`` that calls this before its first write holds
    SQLite's write lock only for its writes, not for the reads before them, so writers queue for a shorter
    time (the ballot cast: the session, the process and its ballots are read before). What was read stays
    loaded (``expire_on_commit=False``); what must not change between the two transactions has to be read
    again after this call (the cast re-reads the process under the lock, ``voting.lifecycle.lock``)."""
    if db.info.get(WRITE_OPTION):
        return
    db.info[WRITE_OPTION] = True
    if db.get_bind().dialect.name != "sqlite":
        return
    if db.new or db.dirty or db.deleted:
        raise RuntimeError("begin_write() after a change: the change would be written without the lock")
    if db.in_transaction():
        conn = db.connection()
        if conn.connection.dbapi_connection.total_changes != conn.info.get(CHANGES_KEY):
            return  # this transaction has written already, so it holds the write lock: nothing to do
        db.commit()  # a read so far: end it (nothing to write) …
    db.connection(execution_options={WRITE_OPTION: True})  # … and begin a write transaction


def delete_where(engine: Engine, model: Any, condition: Any) -> int:
    """Delete the rows of ``model`` matching ``condition`` in a write transaction of its own; returns how
    many went. A cheap read comes first: the hourly housekeeping (old mail, spent tokens, rate-limit events)
    usually finds nothing and then takes no write lock."""
    with new_session(engine) as db:
        if db.execute(select(model).where(condition).limit(1)).first() is None:
            return 0
    with new_session(engine, write=True) as db:
        count = db.execute(delete(model).where(condition)).rowcount or 0
        db.commit()
    return int(count)


# Stable constraint names on every backend (SQLite batch migrations need named constraints).

SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
