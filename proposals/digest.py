"""The e-mail digest: one mail per person with their unread, not yet mailed notifications of the kinds
they chose for e-mail, in their language. Run by ``mitmachen digest`` (e.g. hourly from cron).

- Idempotent: each notification is mailed at most once (``emailed_at``); a second run sends nothing.
- Safe against overlapping runs: a person's notifications are claimed with a conditional UPDATE before
  the mail goes out; a concurrent run waits on those rows and then finds nothing left to claim.
- Never mails deleted or suspended accounts, or addresses that were never confirmed.
- Only notifications from the last ``MAX_AGE_DAYS`` days: turning e-mail on later does not mail old news.

``send_digest`` never commits; the caller commits after each person (see proposals/cli.py) so one failed
delivery neither loses nor repeats the others.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlmodel import Session

from app import i18n
from app.database import utcnow
from app.i18n import gettext as _
from app.mail import send_mail
from app.models import User
from app.settings import Settings
from proposals import notifications
from proposals.models import Notification, NotificationSetting

log = logging.getLogger("mitmachen.digest")
MAX_AGE_DAYS = 14


@dataclass(frozen=True)
class Digest:
    user: User
    entries: list[notifications.Entry]


@contextmanager
def locale(code: str) -> Iterator[None]:
    previous = i18n.get_locale()
    i18n.set_locale(code)
    try:
        yield
    finally:
        i18n.set_locale(previous)


def recipients(db: Session, *, now: dt.datetime | None = None) -> list[int]:
    """Ids of active, confirmed accounts that chose e-mail for some kind (candidates for a digest)."""
    now = now or utcnow()
    stmt = (
        select(User.id)
        .join(NotificationSetting, NotificationSetting.user_id == User.id)
        .where(
            NotificationSetting.email.is_(True),  # type: ignore[attr-defined]
            User.deleted_at.is_(None),  # type: ignore[union-attr]
            User.email.is_not(None),  # type: ignore[union-attr]
            User.email_confirmed_at.is_not(None),  # type: ignore[union-attr]
            (User.suspended_until.is_(None)) | (User.suspended_until <= now),  # type: ignore[union-attr, operator]
        )
        .distinct()
        .order_by(User.id)
    )
    return list(db.execute(stmt).scalars())


def collect(db: Session, *, user: User, now: dt.datetime | None = None) -> Digest | None:
    """The user's pending digest, or None (nothing to send, or an account we never mail)."""
    now = now or utcnow()
    if user.is_deleted or user.is_suspended(now) or not user.email or not user.is_confirmed:
        return None
    kinds = [k for k, (_in_app, email) in notifications.preferences(db, user=user).items() if email]
    since = now - dt.timedelta(days=MAX_AGE_DAYS)
    entries = notifications.pending_email(db, user=user, kinds=kinds, since=since)
    return Digest(user, entries) if entries else None


def compose(digest: Digest, settings: Settings) -> tuple[str, str]:
    """Subject and plain-text body in the recipient's language."""
    base = settings.base_url.rstrip("/")
    with locale(digest.user.locale):
        subject = _("Your notifications from %(platform)s %(city)s", platform=settings.platform_name,
                    city=settings.city_name)  # fmt: skip
        lines = [
            _("Hello %(name)s,", name=digest.user.display_name),
            "",
            i18n.ngettext(
                "there is %(num)s new notification for you:",
                "there are %(num)s new notifications for you:",
                len(digest.entries),
            ),
            "",
        ]
        for entry in digest.entries:
            lines += [f"- {notifications.describe(entry)}", f"  {base}{entry.path}", ""]
        lines += [
            _("All notifications: %(url)s", url=f"{base}/notifications"),
            _("Choose which e-mails you get: %(url)s", url=f"{base}/notifications/settings"),
        ]
    return subject, "\n".join(lines) + "\n"


def claim(db: Session, *, digest: Digest, now: dt.datetime) -> Digest | None:
    """Mark the digest's notifications as mailed unless another run got them first; the digest of what
    was claimed, or None."""
    ids = [e.notification.id for e in digest.entries]
    db.execute(
        update(Notification)
        .where(Notification.id.in_(ids), Notification.emailed_at.is_(None))  # type: ignore[union-attr]
        .values(emailed_at=now)
        .execution_options(synchronize_session=False)
    )
    mine = set(
        db.execute(
            select(Notification.id).where(Notification.id.in_(ids), Notification.emailed_at == now)  # type: ignore[union-attr]
        ).scalars()
    )
    entries = [e for e in digest.entries if e.notification.id in mine]
    return Digest(digest.user, entries) if entries else None


def send_digest(
    db: Session, *, user: User, settings: Settings, now: dt.datetime | None = None, dry_run: bool = False
) -> int:
    """Queue the user's digest mail in ``db``'s unit of work (app/outbox.py delivers it after the commit);
    returns the number of notifications mailed (0 if none)."""
    now = now or utcnow()
    digest = collect(db, user=user, now=now)
    if digest is None:
        return 0
    if dry_run:
        return len(digest.entries)
    digest = claim(db, digest=digest, now=now)
    if digest is None:
        return 0
    subject, body = compose(digest, settings)
    send_mail(db, settings, to=user.email, subject=subject, body=body)  # type: ignore[arg-type]
    log.info("digest to user %s: %s notifications", user.id, len(digest.entries))
    return len(digest.entries)
