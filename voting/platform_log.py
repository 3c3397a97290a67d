"""The platform-wide audit log: role changes, suspensions and moderation decisions.

Entries are public (``/api/v1/log``) and name the item and the outcome. People appear only under a
*pseudonym*: an HMAC-SHA-256 (truncated to 128 bits) of the user id with a key derived from the app's
SECRET_KEY. The same person always gets the same pseudonym, so the public can see that one account made
forty decisions, but not whose account it is; staff resolve pseudonyms on a staff-only page
(``resolve_pseudonyms``). Rotating SECRET_KEY makes older pseudonyms unresolvable (they stay verifiable).

Entries are appended by event handlers (``install`` subscribes them to app/events.py) inside the
publisher's transaction, so a role change and its entry land together or not at all.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from app import events
from app.models import User
from voting import audit
from voting.audit import PLATFORM_LOG

PSEUDONYM_LABEL = b"mitmachen/audit/pseudonym/v1"
MAX_TEXT = 200
_key: bytes | None = None


def pseudonym_key(secret_key: str) -> bytes:
    """The HMAC key for pseudonyms, derived from (never equal to) the app secret."""
    return hmac.new(secret_key.encode("utf-8"), PSEUDONYM_LABEL, hashlib.sha256).digest()


def _current_key() -> bytes:
    global _key
    if _key is None:
        from app.settings import Settings

        _key = pseudonym_key(Settings.from_env().secret_key)
    return _key


def pseudonym(user_id: int | None, key: bytes | None = None) -> str | None:
    """The public pseudonym of a user id (None stays None)."""
    if user_id is None:
        return None
    mac = hmac.new(key or _current_key(), f"user:{int(user_id)}".encode(), hashlib.sha256)
    return mac.hexdigest()[:32]


def on_role_changed(
    db: Session, *, user_id: int, role: str, previous: str, actor_id: int | None, **_: Any
) -> None:
    audit.append(
        db,
        log_id=PLATFORM_LOG,
        entry_type="role.changed",
        payload={
            "account": pseudonym(user_id),
            "role": role,
            "previous": previous,
            "actor": pseudonym(actor_id),
        },
    )


def on_account_suspended(db: Session, *, user_id: int, until: Any, actor_id: int | None, **_: Any) -> None:
    audit.append(
        db,
        log_id=PLATFORM_LOG,
        entry_type="account.suspended",
        payload={
            "account": pseudonym(user_id),
            "outcome": "suspended" if until is not None else "lifted",
            "until": audit.format_time(until) if until is not None else None,
            "actor": pseudonym(actor_id),
        },
    )


def install(settings: Any = None) -> None:
    """Subscribe the handlers (idempotent). Pass the app's settings so pseudonyms use its SECRET_KEY."""
    global _key
    if settings is not None:
        _key = pseudonym_key(settings.secret_key)
    events.subscribe("role.changed", on_role_changed)
    events.subscribe("account.suspended", on_account_suspended)


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT or "\x00" in value:
        raise ValueError(f"{name} must be 1–{MAX_TEXT} characters")
    return value.strip()


def append_moderation_decision(
    db: Session, *, item: str, ground: str, outcome: str, moderator_id: int, decision_id: int
) -> audit.Appended:
    """Log a moderation decision in the caller's transaction: the item (e.g. ``"comment:42"``), the ground
    (e.g. ``"insult"``), the outcome (e.g. ``"hidden"``), the decision's id; the moderator as a pseudonym."""
    return audit.append(
        db,
        log_id=PLATFORM_LOG,
        entry_type="moderation.decision",
        payload={
            "item": _text("item", item),
            "ground": _text("ground", ground),
            "outcome": _text("outcome", outcome),
            "decision": int(decision_id),
            "actor": pseudonym(moderator_id),
        },
    )


# --- staff: who is behind a pseudonym ---------------------------------------------------------------------


def resolve_pseudonyms(db: Session, wanted: Iterable[str], *, batch: int = 5000) -> dict[str, User]:
    """Map pseudonyms to users: staff, moderators and admins first, then every account in id order until
    all are found (a keyed hash cannot be inverted, only recomputed)."""
    todo = {p for p in wanted if p}
    found: dict[str, User] = {}
    if not todo:
        return found
    key = _current_key()
    staff = select(User).where(User.role != "resident").order_by(User.id)
    for user in db.execute(staff).scalars():
        p = pseudonym(user.id, key)
        if p in todo:
            found[p] = user
            todo.discard(p)
    last = 0
    while todo:
        rows = list(
            db.execute(select(User.id).where(User.id > last).order_by(User.id).limit(batch)).scalars()
        )
        if not rows:
            break
        for uid in rows:
            p = pseudonym(uid, key)
            if p in todo:
                found[p] = db.get(User, uid)  # type: ignore[assignment]
                todo.discard(p)
        last = rows[-1]
    return found


def _parse_time(text: Any) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def staff_entries(db: Session, *, start: int = 0, limit: int = 50) -> list[dict[str, Any]]:
    """Platform-log entries from ``start`` with the people behind ``actor`` and ``account`` resolved."""
    rows = audit.entries(db, PLATFORM_LOG, start=start, limit=limit)
    decoded = [(row, audit.decode(bytes(row.entry))) for row in rows]
    wanted = {
        entry["payload"].get(field)
        for _, entry in decoded
        for field in ("actor", "account")
        if isinstance(entry.get("payload"), dict)
    }
    people = resolve_pseudonyms(db, {w for w in wanted if isinstance(w, str)})
    out = []
    for row, entry in decoded:
        payload = entry.get("payload") if isinstance(entry.get("payload"), dict) else {}
        out.append(
            {
                "index": row.idx,
                "type": entry.get("type"),
                "at": entry.get("at"),
                "at_dt": _parse_time(entry.get("at")),
                "payload": payload,
                "actor": people.get(payload.get("actor")),
                "account": people.get(payload.get("account")),
            }
        )
    return out
