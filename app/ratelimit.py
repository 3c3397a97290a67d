"""Rate limits kept in the database, so every worker of a scaled-out deployment sees the same counts.

``check_and_hit`` counts an attempt under each key and tells whether any key is over its limit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import delete, func, select
from sqlmodel import Session

from app.database import utcnow
from app.models import RateLimitEvent


class RateLimited(Exception):
    def __init__(self, retry_after: int):
        super().__init__(f"rate limited, retry after {retry_after}s")
        self.retry_after = retry_after


def check_and_hit(
    db: Session, keys: Iterable[str], *, limit: int, window_seconds: int, enabled: bool = True
) -> None:
    """Record one attempt under every key; raise RateLimited if any key already reached ``limit``
    attempts in the last ``window_seconds``. Blocked attempts are not recorded, so waiting helps."""
    if not enabled:
        return
    now = utcnow()
    since = now - dt.timedelta(seconds=window_seconds)
    keys = [k[:200] for k in keys if k]
    for key in keys:
        count, oldest = db.execute(
            select(func.count(RateLimitEvent.id), func.min(RateLimitEvent.at)).where(
                RateLimitEvent.key == key, RateLimitEvent.at > since
            )
        ).one()
        if count >= limit:
            retry = window_seconds - int((now - oldest).total_seconds()) if oldest else window_seconds
            raise RateLimited(max(retry, 1))
    for key in keys:
        db.add(RateLimitEvent(key=key, at=now))
    db.flush()


def purge_old(db: Session, older_than_seconds: int = 86400) -> int:
    cutoff = utcnow() - dt.timedelta(seconds=older_than_seconds)
    result = db.execute(delete(RateLimitEvent).where(RateLimitEvent.at < cutoff))
    return result.rowcount or 0
