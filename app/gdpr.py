"""Data-subject rights (GDPR Art. 15, 17, 20): a resident's data export and the erasure of an account.

The export collects every row that refers to the account through a foreign key to ``user.id``, found at
run time in the models' metadata, so tables that feature packages add later (sign-in identities, second
factor, verification) are included without this module importing them; secrets (password and token
hashes, second-factor secrets, keyed voter hashes) are left out by column name. Feature packages add what a
foreign key cannot find through a plugin module listed in ``app.main.GDPR_MODULES`` with

* ``export(db, settings, user) -> dict`` — extra sections (e.g. "you voted in process X", never a ballot),
* ``erase(db, settings, user, mode) -> None`` — what deleting the account does to their rows.

Erasure keeps the user row, anonymised, so public content keeps a neutral author; ``DELETED_CONTENT``
decides whether the account's proposals and comments stay under "deleted account" (``anonymise``) or are
removed (``remove``: comments become "deleted" placeholders so threads stay intact). Ballots stay counted:
a ballot never names its voter, and the keyed voter link is deleted.

The download (ASVS V14.2.1, CVE-2026-45377): a POST that re-authenticates (password, authenticator code or
e-mail confirmation: app/accounts/reauth.py, ASVS V7.5.1) issues a signed token naming the user and the
server-side session record; the download needs that same session, is valid for ``EXPORT_TOKEN_MINUTES`` and
works once (a used token's digest is recorded: app/usedtokens.py).
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import importlib
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Table, select
from sqlmodel import Session, SQLModel

from app import i18n, usedtokens
from app.database import utcnow
from app.models import User, UserSession
from app.security import TokenError, sign, token_digest, unsign
from app.settings import Settings

log = logging.getLogger("mitmachen.gdpr")

EXPORT_FORMAT = "mitmachen-personal-data"
EXPORT_VERSION = 1
EXPORT_TOKEN_MINUTES = 10
DELETED_CONTENT_MODES = ("anonymise", "remove")
USED_PURPOSE = "gdpr-export"  # app/usedtokens.py: spent download tokens

# never exported: secrets and keyed hashes (a copy would not help the person and could hurt them)
SECRET_MARKERS = ("password", "secret", "_hash", "token", "recovery")
EXCLUDED_COLUMNS = {
    ("moderation_decision", "note"),  # the moderators' internal note; the statement of reasons is exported
    ("paper_ballot", "selection"),  # paper ballots a staff member entered are other people's secret votes
}
# "user" and "user_session" are exported as their own sections; rate-limit events and spent single-use tokens
# name no account (keys and token digests only)
EXCLUDED_TABLES = {"user", "user_session", "rate_limit_event", "used_token"}


# --- plugins ------------------------------------------------------------------------------------------------


def _plugins() -> list[Any]:
    from app.main import gdpr_modules  # the composition root names the feature packages' modules

    return [importlib.import_module(name) for name in gdpr_modules()]


def exporters() -> list[Callable[[Session, Settings, User], dict[str, Any]]]:
    return [m.export for m in _plugins() if hasattr(m, "export")]


def erasers() -> list[Callable[[Session, Settings, User, str], None]]:
    return [m.erase for m in _plugins() if hasattr(m, "erase")]


# --- export -------------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _secret(table: str, column: str) -> bool:
    name = column.lower()
    return (table, column) in EXCLUDED_COLUMNS or any(marker in name for marker in SECRET_MARKERS)


def _row(table: Table, row: Any) -> dict[str, Any]:
    return {c.name: _plain(row._mapping[c]) for c in table.columns if not _secret(table.name, c.name)}


def user_references() -> list[tuple[Table, Any]]:
    """Every (table, column) with a foreign key to ``user.id`` in the loaded models."""
    out = []
    for table in SQLModel.metadata.sorted_tables:
        if table.name in EXCLUDED_TABLES:
            continue
        for column in table.columns:
            if any(fk.column.table.name == "user" for fk in column.foreign_keys):
                out.append((table, column))
    return out


def collect(db: Session, settings: Settings, user: User) -> dict[str, Any]:
    """Everything stored about ``user``, as JSON-ready data."""
    user_table: Table = User.__table__  # type: ignore[attr-defined]
    account = _row(user_table, db.execute(select(user_table).where(user_table.c.id == user.id)).one())
    session_table: Table = UserSession.__table__  # type: ignore[attr-defined]
    sessions = [
        _row(session_table, r)
        for r in db.execute(
            select(session_table).where(session_table.c.user_id == user.id).order_by(session_table.c.id)
        )
    ]
    records: dict[str, list[dict[str, Any]]] = {}
    for table, column in user_references():
        pk = list(table.primary_key.columns)
        rows = db.execute(select(table).where(column == user.id).order_by(*pk)).all()
        if rows:
            records[f"{table.name}.{column.name}"] = [_row(table, r) for r in rows]
    export: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "generated_at": _plain(utcnow()),
        "controller": f"{settings.platform_name} {settings.city_name}",
        "about": i18n.gettext(
            "All data stored about your account. Each entry of 'records' is named after the table and the "
            "column that refers to your account. Password and token hashes are left out on purpose."
        ),
        "account": account,
        "sessions": sessions,
        "records": records,
    }
    for exporter in exporters():
        export.update(exporter(db, settings, user))
    return export


def export_filename(user: User, now: dt.datetime | None = None) -> str:
    return f"mitmachen-data-{user.id}-{(now or utcnow()).strftime('%Y%m%d')}.json"


# --- re-authentication and the single-use download token ----------------------------------------------------


def issue_export_token(settings: Settings, user: User, record: UserSession) -> str:
    """A signed token for one download by this user in this session (see module docstring)."""
    from app.security import new_token

    return sign(settings.secret_key, "gdpr-export", {"uid": user.id, "sid": record.id, "n": new_token(12)})


def consume_export_token(
    db: Session, settings: Settings, token: str, user: User, record: UserSession
) -> None:
    """Accept ``token`` once, for its user in its session, within EXPORT_TOKEN_MINUTES; TokenError otherwise.

    The token is spent in app/usedtokens.py (one insert against a UNIQUE constraint), so two concurrent
    downloads of one token cannot both pass."""
    payload = unsign(settings.secret_key, "gdpr-export", token, EXPORT_TOKEN_MINUTES * 60)
    if not isinstance(payload, dict) or payload.get("uid") != user.id or payload.get("sid") != record.id:
        raise TokenError("invalid")
    expires_at = usedtokens.keep_until(dt.timedelta(minutes=EXPORT_TOKEN_MINUTES))
    if not usedtokens.spend(db, USED_PURPOSE, token_digest(token), expires_at):
        raise TokenError("used")


# --- erasure ------------------------------------------------------------------------------------------------


def erase_related(db: Session, settings: Settings, user: User) -> None:
    """Before the user row is anonymised (app/accounts/services.delete_account): the feature packages apply
    DELETED_CONTENT to their rows, and personal rows that a hard delete would cascade (sessions, follows,
    notifications, sign-in identities, second factors, ...) go now; the packages' KEEP_ON_ERASE tables
    (supports, comment votes) stay, so counts stay right."""
    from sqlalchemy import delete

    mode = settings.deleted_content
    for eraser in erasers():
        eraser(db, settings, user, mode)
    keep = {name for m in _plugins() for name in getattr(m, "KEEP_ON_ERASE", ())}
    for table, column in user_references():
        if table.name in keep:
            continue
        if any(fk.ondelete == "CASCADE" for fk in column.foreign_keys if fk.column.table.name == "user"):
            db.execute(delete(table).where(column == user.id))
    db.flush()
    log.info("account data erased user_id=%s content=%s", user.id, mode)
