"""Single-use tokens: the record of spent ones (table ``used_token``, model ``app.models.UsedToken``).

A signed token (a download link, a mailed confirmation link, ...) proves itself; what it cannot prove is that
it was not used before. Its user spends it here once, under a *purpose* (e.g. "gdpr-export"), and the row
stays until ``expires_at`` — a moment after which the token's signature has expired anyway — so that a
second use is refused:

    if not usedtokens.spend(db, "my-purpose", usedtokens.digest(token), expires_at):
        raise TokenError("used")

Only the token's SHA-256 digest is stored, never the token. Spending is one ``INSERT … ON CONFLICT DO
NOTHING RETURNING id`` against UNIQUE(purpose, digest): of two concurrent requests with the same token exactly one
inserts the row, the other (on PostgreSQL after the first commits) inserts nothing and is refused; if the
first rolls back, its row goes with it and the token is still unused. No lock is needed for this.

``purge_expired`` deletes the rows whose tokens cannot be used any more (the outbox loop's hourly
housekeeping calls it through ``purge``, app/outbox.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re

from sqlalchemy import Engine, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from app.database import begin_write, delete_where, utcnow
from app.models import UsedToken

# Rows are kept this long past the token's own end, so that workers whose clocks differ a little cannot
# accept a token again after another one purged its row.
GRACE = dt.timedelta(hours=1)

_DIGEST = re.compile(r"[0-9a-f]{64}")


def digest(token: str) -> str:
    """The SHA-256 hex digest that stands for ``token`` (app.security.token_digest computes the same)."""
    return hashlib.sha256(token.encode()).hexdigest()


def keep_until(lifetime: dt.timedelta, now: dt.datetime | None = None) -> dt.datetime:
    """``expires_at`` for a token that can be used for at most ``lifetime`` from now."""
    return (now or utcnow()) + lifetime + GRACE


def _check(purpose: str, token_digest: str) -> None:
    if not purpose or len(purpose) > 40:
        raise ValueError("purpose must have 1 to 40 characters")
    if not _DIGEST.fullmatch(token_digest):  # never store a token itself by mistake
        raise ValueError("expected the SHA-256 hex digest of the token, not the token")


def spend(db: Session, purpose: str, token_digest: str, expires_at: dt.datetime) -> bool:
    """Record the token with this digest as spent for ``purpose``; False if it already was (nothing
    changes then). Safe against concurrent requests: one statement, decided by the UNIQUE constraint."""
    _check(purpose, token_digest)
    begin_write(db)  # spent by GET requests too (mailed links, downloads): see app.database.begin_write
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    table = UsedToken.__table__  # type: ignore[attr-defined]
    stmt = (
        insert(table)
        .values(purpose=purpose, digest=token_digest, used_at=utcnow(), expires_at=expires_at)
        .on_conflict_do_nothing(index_elements=["purpose", "digest"])
        .returning(
            table.c.id
        )  # the new row's id, none on a conflict (rowcount is not reliable with RETURNING)
    )
    return db.execute(stmt).first() is not None


def is_spent(db: Session, purpose: str, token_digest: str) -> bool:
    """Whether the token with this digest was spent for ``purpose`` (and its row not yet purged)."""
    found = db.execute(
        select(UsedToken.id).where(UsedToken.purpose == purpose, UsedToken.digest == token_digest).limit(1)
    ).first()
    return found is not None


def purge_expired(db: Session, now: dt.datetime | None = None) -> int:
    """Delete the rows whose ``expires_at`` has passed; returns how many went. The caller commits."""
    result = db.execute(delete(UsedToken).where(UsedToken.expires_at < (now or utcnow())))  # type: ignore[arg-type]
    return int(result.rowcount or 0)


def purge(engine: Engine, now: dt.datetime | None = None) -> int:
    """``purge_expired`` in a transaction of its own, after a cheap read finds anything to delete."""
    return delete_where(engine, UsedToken, UsedToken.expires_at < (now or utcnow()))  # type: ignore[arg-type]
