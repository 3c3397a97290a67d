"""Rate limits shared by every worker of a scaled-out deployment: in Redis when REDIS_URL is set, in the
database otherwise. Both keep a sliding window log and behave the same.

``check_and_hit`` counts an attempt under each key and tells whether any key is over its limit: if one of
the keys already has ``limit`` attempts in the last ``window_seconds``, it raises ``RateLimited`` (with the
seconds until the oldest of them leaves the window) and records nothing, so waiting helps; otherwise it
records one attempt under every key. In Redis the check and the record are one Lua script, atomic across
workers and machines. If Redis cannot be reached the database takes over (logged), so limits never
silently disappear.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select
from sqlmodel import Session

from app.database import delete_where, utcnow
from app.models import RateLimitEvent

log = logging.getLogger("mitmachen.ratelimit")
REDIS_PREFIX = "mitmachen:rl:"

# KEYS: the counters; ARGV: now (ms), window (ms), limit, a unique member. Returns 0 when recorded,
# otherwise the age in ms of the oldest attempt inside the window of the first key over the limit (+1,
# so that it is never 0).
_LUA = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
for _, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) >= limit then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    return now - tonumber(oldest[2]) + 1
  end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[4])
  redis.call('PEXPIRE', key, window)
end
return 0
"""


class RateLimited(Exception):
    def __init__(self, retry_after: int):
        super().__init__(f"rate limited, retry after {retry_after}s")
        self.retry_after = retry_after


class RedisBackend:
    def __init__(self, url: str, *, prefix: str = REDIS_PREFIX) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.script = self.client.register_script(_LUA)
        self.prefix = prefix

    def hit(self, keys: list[str], *, limit: int, window_seconds: int, now: float | None = None) -> None:
        now_ms = int((time.time() if now is None else now) * 1000)
        member = f"{now_ms}:{secrets.token_hex(6)}"
        age_ms = int(
            self.script(
                keys=[self.prefix + k for k in keys], args=[now_ms, window_seconds * 1000, limit, member]
            )
        )
        if age_ms:
            raise RateLimited(max(window_seconds - (age_ms - 1) // 1000, 1))


_backend: RedisBackend | None = None


def configure(redis_url: str) -> RedisBackend | None:
    """Use Redis for every check (REDIS_URL), or the database when ``redis_url`` is empty."""
    global _backend
    _backend = RedisBackend(redis_url) if redis_url else None
    return _backend


def check_and_hit(
    db: Session,
    keys: Iterable[str],
    *,
    limit: int,
    window_seconds: int,
    enabled: bool = True,
    backend: Any = "configured",
) -> None:
    """Record one attempt under every key; raise RateLimited if any key already reached ``limit``
    attempts in the last ``window_seconds``. Blocked attempts are not recorded, so waiting helps."""
    if not enabled:
        return
    keys = [k[:200] for k in keys if k]
    if not keys:
        return
    redis_backend = _backend if backend == "configured" else backend
    if redis_backend is not None:
        import redis

        try:
            redis_backend.hit(keys, limit=limit, window_seconds=window_seconds)
            return
        except redis.RedisError as exc:
            log.error("rate limit: Redis unavailable (%s), counting in the database", type(exc).__name__)
    _db_hit(db, keys, limit=limit, window_seconds=window_seconds)


# Built once (the ballot cast runs them on every attempt).
_RECENT_HITS = select(func.count(RateLimitEvent.id), func.min(RateLimitEvent.at)).where(
    RateLimitEvent.key == bindparam("key"), RateLimitEvent.at > bindparam("since")
)
_HIT = insert(RateLimitEvent.__table__)


_table = RateLimitEvent.__table__
# One key (the ballot cast's per-account limit): count and record in one statement, the row inserted only
# when the count is below the limit (INSERT … SELECT … WHERE (count) < limit RETURNING id).
_HIT_IF_BELOW = (
    insert(_table)
    .from_select(
        ["key", "at"],
        select(bindparam("key", type_=_table.c.key.type), bindparam("at", type_=_table.c.at.type)).where(
            select(func.count(_table.c.id))
            .where(_table.c.key == bindparam("key"), _table.c.at > bindparam("since"))
            .scalar_subquery()
            < bindparam("limit")
        ),
    )
    .returning(_table.c.id)
)


def _db_hit(db: Session, keys: list[str], *, limit: int, window_seconds: int) -> None:
    now = utcnow()
    since = now - dt.timedelta(seconds=window_seconds)
    if len(keys) == 1:
        params = {"key": keys[0], "at": now, "since": since, "limit": limit}
        if db.execute(_HIT_IF_BELOW, params).first() is not None:
            return
    for key in keys:
        count, oldest = db.execute(_RECENT_HITS, {"key": key, "since": since}).one()
        if count >= limit:
            retry = window_seconds - int((now - oldest).total_seconds()) if oldest else window_seconds
            raise RateLimited(max(retry, 1))
    # One Core INSERT (executemany for several keys) in the caller's transaction, not ORM objects and a
    # flush: the same rows at a fraction of the CPU (the ballot cast path counts every attempt).
    db.execute(_HIT, [{"key": key, "at": now} for key in keys])


KEEP_SECONDS = 86400  # rate-limit events are kept at least a day (longer if a configured window is longer)


def purge(engine: Any, older_than_seconds: int = KEEP_SECONDS) -> int:
    """``purge_old`` in a write transaction of its own (the mail loop calls it hourly)."""
    cutoff = utcnow() - dt.timedelta(seconds=older_than_seconds)
    return delete_where(engine, RateLimitEvent, RateLimitEvent.at < cutoff)


def purge_old(db: Session, older_than_seconds: int = KEEP_SECONDS) -> int:
    cutoff = utcnow() - dt.timedelta(seconds=older_than_seconds)
    result = db.execute(delete(RateLimitEvent).where(RateLimitEvent.at < cutoff))
    return result.rowcount or 0
