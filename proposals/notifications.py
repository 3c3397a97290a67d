"""Notifications: in-app entries and the e-mail digest (proposals/digest.py), opt-in per kind.

A person chooses per kind whether to see it in the app (default on) and whether to get it in the e-mail
digest (default off); a notification is stored when either is on. Notifications only ever point at public
proposals and shown comments: they are not created for drafts or hidden proposals, and the list and the
digest filter again, so a proposal hidden later or a comment deleted later drops out.

Functions are keyword-only and never commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import aliased
from sqlmodel import Session

from app.database import utcnow
from app.i18n import gettext as _
from app.i18n import lazy
from app.models import Role, User
from app.permissions import is_staff
from proposals.models import (
    Comment,
    Follow,
    Notification,
    NotificationKind,
    NotificationSetting,
    Proposal,
)
from proposals.visibility import is_public, public_comment, public_proposal

KINDS = tuple(k.value for k in NotificationKind)
STAFF_KINDS = (NotificationKind.REVIEW.value,)
DEFAULT_IN_APP = True
DEFAULT_EMAIL = False
PER_PAGE = 20
STATUS_NAMES = {
    "published": lazy("published"),
    "under_review": lazy("under review"),
    "accepted": lazy("accepted"),
    "rejected": lazy("rejected"),
    "implemented": lazy("implemented"),
    "withdrawn": lazy("withdrawn"),
}


def kinds_for(user: User) -> tuple[str, ...]:
    """The kinds a person can receive (review requests only reach staff)."""
    return tuple(k for k in KINDS if k not in STAFF_KINDS or is_staff(user))


# --- preferences ------------------------------------------------------------------------------------------


def preferences(db: Session, *, user: User) -> dict[str, tuple[bool, bool]]:
    """``{kind: (in_app, email)}`` for every kind the user can receive, defaults filled in."""
    rows = db.execute(select(NotificationSetting).where(NotificationSetting.user_id == user.id)).scalars()
    stored = {r.kind: (r.in_app, r.email) for r in rows}
    return {k: stored.get(k, (DEFAULT_IN_APP, DEFAULT_EMAIL)) for k in kinds_for(user)}


def save_preferences(db: Session, *, user: User, values: dict[str, tuple[bool, bool]]) -> None:
    """Store the user's choices; unknown kinds (or staff kinds for non-staff) are refused."""
    allowed = set(kinds_for(user))
    if not set(values) <= allowed:
        raise ValueError(f"unknown notification kinds: {sorted(set(values) - allowed)}")
    rows = {
        r.kind: r
        for r in db.execute(
            select(NotificationSetting).where(NotificationSetting.user_id == user.id)
        ).scalars()
    }
    for kind, (in_app, email) in values.items():
        row = rows.get(kind) or NotificationSetting(user_id=user.id, kind=kind)  # type: ignore[arg-type]
        row.in_app, row.email = bool(in_app), bool(email)
        db.add(row)
    db.flush()


def _wanting(db: Session, user_ids: Iterable[int], kind: str) -> list[int]:
    """Of ``user_ids``, the active accounts that want ``kind`` in the app or by e-mail."""
    ids = sorted(set(user_ids))
    if not ids:
        return []
    users = db.execute(
        select(User.id).where(User.id.in_(ids), User.deleted_at.is_(None))  # type: ignore[union-attr]
    ).scalars()
    active = set(users)
    rows = db.execute(
        select(NotificationSetting.user_id, NotificationSetting.in_app, NotificationSetting.email).where(
            NotificationSetting.user_id.in_(ids), NotificationSetting.kind == kind
        )
    ).all()
    prefs = {uid: (in_app, email) for uid, in_app, email in rows}
    return [uid for uid in ids if uid in active and any(prefs.get(uid, (DEFAULT_IN_APP, DEFAULT_EMAIL)))]


# --- creating ---------------------------------------------------------------------------------------------


def notify_users(
    db: Session, *, user_ids: Iterable[int], kind: str, proposal: Proposal, comment: Comment | None = None
) -> int:
    """Notify ``user_ids`` (those who opted in) about ``proposal``; nothing for non-public proposals."""
    if kind not in KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    if proposal.id is None or not is_public(db, proposal.id):
        return 0
    recipients = _wanting(db, user_ids, kind)
    for uid in recipients:
        db.add(
            Notification(
                user_id=uid,
                kind=kind,
                proposal_id=proposal.id,
                comment_id=comment.id if comment is not None else None,
            )
        )
    db.flush()
    return len(recipients)


def notify_followers(
    db: Session,
    *,
    proposal: Proposal,
    kind: str,
    actor: User | None = None,
    comment: Comment | None = None,
    exclude: Iterable[int] = (),
) -> int:
    """Create a notification for every follower of ``proposal`` (except ``actor`` and ``exclude``);
    returns how many."""
    skip = set(exclude) | ({actor.id} if actor is not None and actor.id is not None else set())
    followers = db.execute(select(Follow.user_id).where(Follow.proposal_id == proposal.id)).scalars()
    return notify_users(
        db, user_ids=[u for u in followers if u not in skip], kind=kind, proposal=proposal, comment=comment
    )


def notify_staff(db: Session, *, proposal: Proposal, kind: str) -> int:
    """Create a notification for every staff account (e.g. a proposal reached the support threshold)."""
    staff = db.execute(
        select(User.id).where(User.role.in_([Role.STAFF.value, Role.ADMIN.value]))  # type: ignore[attr-defined]
    ).scalars()
    return notify_users(db, user_ids=list(staff), kind=kind, proposal=proposal)


# --- reading ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One notification as the list and the digest show it."""

    notification: Notification
    proposal_id: int
    proposal_title: str
    proposal_status: str
    comment_id: int | None
    actor_name: str | None

    @property
    def kind(self) -> str:
        return self.notification.kind

    @property
    def is_unread(self) -> bool:
        return self.notification.read_at is None

    @property
    def path(self) -> str:
        anchor = f"#comment-{self.comment_id}" if self.comment_id is not None else ""
        return f"/proposals/{self.proposal_id}{anchor}"


def describe(entry: Entry) -> str:
    """One line of text for a notification (list and digest), in the current locale; plain text that the
    templates escape."""
    title = entry.proposal_title
    name = entry.actor_name or _("someone")
    if entry.kind == NotificationKind.COMMENT:
        return _("New comment by %(name)s on “%(title)s”", name=name, title=title)
    if entry.kind == NotificationKind.REPLY:
        return _("%(name)s replied to your comment on “%(title)s”", name=name, title=title)
    if entry.kind == NotificationKind.REVIEW:
        return _("“%(title)s” reached the support threshold and awaits review", title=title)
    status = STATUS_NAMES.get(entry.proposal_status)
    return _(
        "The status of “%(title)s” has changed (now: %(status)s)",
        title=title,
        status=_(status) if status else "?",
    )


def shown() -> ColumnElement[bool]:
    """Notifications whose proposal is public and whose comment (if any) is shown and not deleted."""
    return and_(
        public_proposal(),
        or_(Notification.comment_id.is_(None), and_(Comment.deleted_at.is_(None), public_comment())),
    )


def _entries_stmt(user_id: int):
    author = aliased(User)
    return (
        select(
            Notification,
            Proposal.id,
            Proposal.title,
            Proposal.status,
            Comment.id,
            author.display_name,
        )
        .join(Proposal, Proposal.id == Notification.proposal_id)
        .outerjoin(Comment, Comment.id == Notification.comment_id)
        .outerjoin(author, author.id == Comment.author_id)
        .where(Notification.user_id == user_id, shown())
    )


def _entries(rows) -> list[Entry]:
    return [Entry(n, pid, title, status, cid, name) for n, pid, title, status, cid, name in rows]


def in_app_kinds(db: Session, *, user: User) -> list[str]:
    return [k for k, (in_app, _email) in preferences(db, user=user).items() if in_app]


@dataclass(frozen=True)
class EntryPage:
    entries: list[Entry]
    page: int
    pages: int
    total: int
    unread: int


def list_entries(db: Session, *, user: User, page: int = 1, per_page: int = PER_PAGE) -> EntryPage:
    """The in-app list, newest first, of the kinds the user wants to see in the app."""
    kinds = in_app_kinds(db, user=user)
    base = _entries_stmt(user.id).where(Notification.kind.in_(kinds))  # type: ignore[arg-type]
    total = db.execute(select(func.count()).select_from(base.subquery())).scalar_one()
    unread = unread_count(db, user=user)
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    rows = db.execute(
        base.order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    return EntryPage(_entries(rows), page, pages, total, unread)


def unread_count(db: Session, *, user: User) -> int:
    kinds = in_app_kinds(db, user=user)
    stmt = (
        select(func.count(Notification.id))
        .join(Proposal, Proposal.id == Notification.proposal_id)
        .outerjoin(Comment, Comment.id == Notification.comment_id)
        .where(
            Notification.user_id == user.id,
            Notification.read_at.is_(None),
            Notification.kind.in_(kinds),
            shown(),
        )
    )
    return int(db.execute(stmt).scalar_one())


def pending_email(db: Session, *, user: User, kinds: Iterable[str], since: dt.datetime) -> list[Entry]:
    """Unread, not yet mailed notifications of ``kinds`` created after ``since``, oldest first."""
    kinds = list(kinds)
    if not kinds:
        return []
    stmt = _entries_stmt(user.id).where(
        Notification.kind.in_(kinds),
        Notification.emailed_at.is_(None),
        Notification.read_at.is_(None),
        Notification.created_at > since,
    )
    return _entries(db.execute(stmt.order_by(Notification.created_at, Notification.id)).all())


def mark_read(db: Session, *, notification: Notification, user: User) -> None:
    if notification.user_id != user.id:
        raise PermissionError("not the recipient")
    if notification.read_at is None:
        notification.read_at = utcnow()
        db.add(notification)
        db.flush()


def mark_all_read(db: Session, *, user: User) -> int:
    result = db.execute(
        update(Notification)
        .where(Notification.user_id == user.id, Notification.read_at.is_(None))
        .values(read_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)
