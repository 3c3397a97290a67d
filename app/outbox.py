"""The mail outbox: mail is queued in the sender's transaction (``app.mail.send_mail``) and delivered
after the commit, with retries, exponential backoff and jitter, so an SMTP outage loses no mail and never
blocks or fails a request.

Delivery paths, all claiming rows so that no mail goes out twice, whatever the number of workers:

* Mail queued inside a request is *reserved* for that request (``claimed_by`` = its token, for a short
  lease) and handed to the SMTP server right after the response was sent (``deliver_reserved``, called by
  app.middleware). A worker that dies before that leaves the row to the loop once the lease expires.
* Every app worker runs an ``OutboxWorker`` thread (started by the app's lifespan) that polls for due rows
  every MAIL_OUTBOX_INTERVAL seconds and when woken (``wake()`` after a commit that queued unreserved
  mail). ``mitmachen mail-worker`` runs the same loop as a separate process.
* A due row is claimed in its own transaction: ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL (two
  workers never get the same row), the write lock on SQLite; the claim sets ``locked_until``.

A failed attempt schedules the next one after ``backoff(attempts)``; after MAIL_MAX_ATTEMPTS the mail is
marked failed, logged as an error, and counted on the admin's mail settings page.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import random
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import Engine, event, func, or_, select, update
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from app import metrics, ratelimit, usedtokens
from app.database import delete_where, new_session, utcnow
from app.mail import MailConfig, MailError, Reservation, _reservation, deliver
from app.ops_models import MailOutbox
from app.settings import RATE_LIMIT_NAMES, Settings

log = logging.getLogger("mitmachen.outbox")

RESERVE_SECONDS = 120  # a request's own mail: the loop leaves it alone this long
LEASE_SECONDS = 600  # a claimed batch: another worker may take it over after this
BATCH = 20
BACKOFF_BASE = 30
BACKOFF_CAP = 6 * 3600
KEEP_SENT_DAYS = 30  # delivered mail is deleted after this (the loop purges hourly)
_INFO_KEY = "mitmachen_outbox"
WAKE_KEY = "mitmachen_outbox_wake"  # set in session.info: wake the loops after the commit


_HOST = socket.gethostname()[:30]  # read once: every request makes a reservation name


def _worker_name() -> str:
    return f"{_HOST}:{os.getpid()}:{secrets.token_hex(4)}"


def backoff(attempts: int, *, rng: random.Random | None = None) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt: 30 s, 1 min, 2 min, … capped at 6 h,
    each ±20 % jitter so that many queued mails do not hit a recovering server at the same instant."""
    base = min(BACKOFF_BASE * 2 ** max(attempts - 1, 0), BACKOFF_CAP)
    return base * (rng or random).uniform(0.8, 1.2)


# --- queueing -------------------------------------------------------------------------------------------


def enqueue(db: Session, *, to: str, subject: str, body: str) -> int:
    reservation = _reservation.get()
    now = utcnow()
    row = MailOutbox(to=to[:254], subject=subject[:300], body=body, created_at=now, next_attempt_at=now)
    if reservation is not None:
        row.claimed_by = reservation.token
        row.locked_until = now + dt.timedelta(seconds=RESERVE_SECONDS)
    db.add(row)
    db.flush()
    db.info.setdefault(_INFO_KEY, []).append((row.id, reservation))
    return row.id  # type: ignore[return-value]


@event.listens_for(OrmSession, "after_commit")
def _after_commit(session: OrmSession) -> None:
    if session.info.pop(WAKE_KEY, False):
        wake()
    queued = session.info.pop(_INFO_KEY, None)
    if not queued:
        return
    unreserved = False
    for mail_id, reservation in queued:
        if reservation is None:
            unreserved = True
        else:
            reservation.committed.append(mail_id)
    metrics.MAILS_QUEUED.inc(len(queued))
    if unreserved:
        wake()


@event.listens_for(OrmSession, "after_rollback")
def _after_rollback(session: OrmSession) -> None:
    session.info.pop(_INFO_KEY, None)
    session.info.pop(WAKE_KEY, None)


@contextlib.contextmanager
def reserve() -> Iterator[Reservation]:
    """Mail queued (and committed) inside this block is reserved for delivery by the caller afterwards,
    with ``deliver_reserved(engine, settings, reservation)``."""
    reservation = Reservation(token="r:" + _worker_name(), committed=[])
    token = _reservation.set(reservation)
    try:
        yield reservation
    finally:
        _reservation.reset(token)


# --- delivery -------------------------------------------------------------------------------------------


@dataclass
class Report:
    sent: int = 0
    retrying: list[tuple[int, str, str]] = field(default_factory=list)  # (id, to, error)
    failed: list[tuple[int, str, str]] = field(default_factory=list)

    @property
    def problems(self) -> list[tuple[int, str, str]]:
        return self.retrying + self.failed


def _config(engine: Engine, settings: Settings) -> MailConfig:
    from app.mail_settings import effective_config

    with new_session(engine) as db:
        return effective_config(db, settings)


def _due(now: dt.datetime):
    return (
        MailOutbox.sent_at.is_(None),  # type: ignore[union-attr]
        MailOutbox.failed_at.is_(None),  # type: ignore[union-attr]
        MailOutbox.next_attempt_at <= now,
        or_(MailOutbox.locked_until.is_(None), MailOutbox.locked_until < now),  # type: ignore[union-attr]
    )


def claim_due(
    engine: Engine, *, now: dt.datetime | None = None, limit: int = BATCH, worker: str = ""
) -> tuple[str, list[int]]:
    """Claim up to ``limit`` due mails for ``worker``; returns (worker token, ids). Rows another worker
    is claiming at the same moment are skipped (PostgreSQL: FOR UPDATE SKIP LOCKED)."""
    now = now or utcnow()
    worker = worker or _worker_name()
    with new_session(engine) as db:  # a cheap read first: most polls find nothing and take no lock
        if db.execute(select(MailOutbox.id).where(*_due(now)).limit(1)).first() is None:
            return worker, []
    with new_session(engine, write=True) as db:
        ids = list(
            db.execute(
                select(MailOutbox.id)
                .where(*_due(now))
                .order_by(MailOutbox.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).scalars()
        )
        if ids:
            db.execute(
                update(MailOutbox)
                .where(MailOutbox.id.in_(ids))  # type: ignore[union-attr]
                .values(locked_until=now + dt.timedelta(seconds=LEASE_SECONDS), claimed_by=worker)
            )
        db.commit()
    return worker, ids


def _deliver_claimed(
    engine: Engine, settings: Settings, worker: str, ids: list[int], *, now: dt.datetime | None = None
) -> Report:
    report = Report()
    if not ids:
        return report
    config = _config(engine, settings)
    with new_session(engine) as db:
        rows = list(
            db.execute(
                select(MailOutbox)
                .where(
                    MailOutbox.id.in_(ids),  # type: ignore[union-attr]
                    MailOutbox.claimed_by == worker,
                    MailOutbox.sent_at.is_(None),  # type: ignore[union-attr]
                    MailOutbox.failed_at.is_(None),  # type: ignore[union-attr]
                )
                .order_by(MailOutbox.id)
            ).scalars()
        )
    max_attempts = settings.mail_max_attempts
    for row in rows:
        error = ""
        try:
            deliver(config, to=row.to, subject=row.subject, body=row.body)
        except MailError as exc:
            error = str(exc)
        at = now or utcnow()
        mine = (MailOutbox.id == row.id, MailOutbox.claimed_by == worker)
        with new_session(engine, write=True) as db:
            if not error:
                values: dict = dict(sent_at=at, locked_until=None, attempts=row.attempts + 1, last_error="")
            elif row.attempts + 1 >= max_attempts:
                values = dict(failed_at=at, locked_until=None, attempts=row.attempts + 1, last_error=error)
            else:
                retry_at = at + dt.timedelta(seconds=backoff(row.attempts + 1))
                values = dict(
                    next_attempt_at=retry_at,
                    locked_until=None,
                    claimed_by=None,
                    attempts=row.attempts + 1,
                    last_error=error,
                )
            db.execute(update(MailOutbox).where(*mine).values(**values))
            db.commit()
        if not error:
            report.sent += 1
            metrics.MAILS_SENT.inc()
            log.info("mail %s sent (attempt %s)", row.id, row.attempts + 1)
        elif "failed_at" in values:
            report.failed.append((row.id, row.to, error))  # type: ignore[arg-type]
            metrics.MAILS_FAILED.inc()
            log.error("mail %s failed for good after %s attempts: %s", row.id, row.attempts + 1, error)
        else:
            report.retrying.append((row.id, row.to, error))  # type: ignore[arg-type]
            metrics.MAIL_ATTEMPT_ERRORS.inc()
            log.warning(
                "mail %s not delivered (attempt %s), retry at %s: %s",
                row.id,
                row.attempts + 1,
                values["next_attempt_at"].isoformat(timespec="seconds"),
                error,
            )
    return report


def deliver_reserved(engine: Engine, settings: Settings, reservation: Reservation) -> Report:
    """Deliver the mail a request (or CLI run) queued and committed under ``reservation``."""
    ids, reservation.committed = list(reservation.committed), []
    return _deliver_claimed(engine, settings, reservation.token, ids)


def deliver_due(
    engine: Engine, settings: Settings, *, now: dt.datetime | None = None, limit: int = BATCH
) -> Report:
    """One pass of the loop: claim due mail and deliver it."""
    worker, ids = claim_due(engine, now=now, limit=limit)
    return _deliver_claimed(engine, settings, worker, ids, now=now)


def rate_limit_keep_seconds(settings: Settings) -> int:
    """How long rate-limit events must be kept: a day, or the longest configured window if longer."""
    windows = [settings.rate(name)[1] for name in RATE_LIMIT_NAMES]
    return max([ratelimit.KEEP_SECONDS, *windows])


def purge_sent(engine: Engine, *, days: int = KEEP_SENT_DAYS, now: dt.datetime | None = None) -> int:
    """Delete delivered mail older than ``days`` (addresses and texts are personal data)."""
    cutoff = (now or utcnow()) - dt.timedelta(days=days)
    return delete_where(engine, MailOutbox, MailOutbox.sent_at < cutoff)  # type: ignore[operator]


def stats(db: Session) -> dict[str, int]:
    """Pending (queued or retrying) and failed mail, for the admin page and the metrics."""
    pending, failed = db.execute(
        select(
            func.count(MailOutbox.id).filter(MailOutbox.sent_at.is_(None), MailOutbox.failed_at.is_(None)),  # type: ignore[union-attr]
            func.count(MailOutbox.id).filter(MailOutbox.failed_at.is_not(None)),  # type: ignore[union-attr]
        )
    ).one()
    return {"pending": int(pending or 0), "failed": int(failed or 0)}


# --- the loop -------------------------------------------------------------------------------------------

_workers: set[OutboxWorker] = set()
_workers_lock = threading.Lock()


def wake() -> None:
    """Tell this process's outbox loops that new mail is waiting."""
    with _workers_lock:
        for worker in _workers:
            worker.wake_event.set()


class OutboxWorker:
    """A thread delivering due mail every ``interval`` seconds and whenever woken."""

    def __init__(self, engine: Engine, settings: Settings, *, interval: float | None = None):
        self.engine = engine
        self.settings = settings
        self.interval = float(interval if interval is not None else settings.mail_outbox_interval)
        self.wake_event = threading.Event()
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.run, name="mail-outbox", daemon=True)

    def start(self) -> OutboxWorker:
        with _workers_lock:
            _workers.add(self)
        self.thread.start()
        return self

    def stop(self, timeout: float = 30) -> None:
        self.stop_event.set()
        self.wake_event.set()
        if self.thread.is_alive():
            self.thread.join(timeout)
        with _workers_lock:
            _workers.discard(self)

    def run_once(self) -> Report:
        report = Report()
        while not self.stop_event.is_set():
            batch = deliver_due(self.engine, self.settings)
            report.sent += batch.sent
            report.retrying += batch.retrying
            report.failed += batch.failed
            if batch.sent + len(batch.problems) < BATCH:
                break
        return report

    def run(self) -> None:
        """Send until stopped; once an hour also delete delivered mail, spent single-use tokens and
        rate-limit events older than the longest window (none of them would be read again)."""
        purged_at = 0.0
        while not self.stop_event.is_set():
            try:
                self.run_once()
                if time.monotonic() - purged_at > 3600:
                    purged_at = time.monotonic()
                    purge_sent(self.engine)
                    usedtokens.purge(self.engine)  # spent single-use tokens past their end
                    ratelimit.purge(self.engine, rate_limit_keep_seconds(self.settings))
            except Exception:  # the database may be away for a moment: log, wait, try again
                log.exception("outbox pass failed")
            self.wake_event.wait(self.interval)
            self.wake_event.clear()


@contextlib.asynccontextmanager
async def lifespan_worker(engine: Engine, settings: Settings):
    """Run an OutboxWorker for the life of the app (if MAIL_OUTBOX_INTERVAL > 0)."""
    worker = OutboxWorker(engine, settings).start() if settings.mail_outbox_interval > 0 else None
    try:
        yield None
    finally:
        if worker is not None:
            from starlette.concurrency import run_in_threadpool

            await run_in_threadpool(worker.stop)
