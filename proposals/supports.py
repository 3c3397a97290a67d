"""Supports and follows: one row per person and proposal, race-free, counters in the same transaction.

A support is inserted with ``INSERT … ON CONFLICT DO NOTHING`` against the UNIQUE (proposal, user)
constraint, so concurrent double submits leave exactly one row and never raise (CVE-2023-47634,
consul #2415); the counter moves with an SQL increment only when a row was really inserted or deleted.
The proposal row is locked first (PostgreSQL), which also makes the threshold check happen once.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from app.database import utcnow
from app.i18n import gettext as _
from app.models import User
from app.settings import Settings
from proposals import notifications
from proposals.lifecycle import ProposalError
from proposals.models import Follow, Proposal, ProposalStatus, Support
from proposals.permissions import SUPPORTABLE_STATUSES


def _insert_ignore(db: Session, table: Table, **values) -> bool:
    """Insert one row unless it violates the (proposal_id, user_id) UNIQUE constraint; True if inserted."""
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = (
        insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["proposal_id", "user_id"])
        .returning(table.c.id)
    )
    return db.execute(stmt).first() is not None


def _lock(db: Session, proposal_id: int) -> Proposal:
    return db.execute(
        select(Proposal)
        .where(Proposal.id == proposal_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()


def _refresh(db: Session, proposal: Proposal) -> None:
    db.refresh(proposal, attribute_names=["support_count", "review_requested_at", "status"])


def support(db: Session, *, proposal: Proposal, user: User, settings: Settings) -> bool:
    """``user`` supports ``proposal``; True if this added a support (False if it already existed).

    When the supports within ``support_window_days`` reach ``support_threshold``, the proposal is marked
    for council review (``review_requested_at``) and staff are notified, once."""
    proposal = _lock(db, proposal.id)
    if proposal.author_id == user.id:
        raise ProposalError(_("You cannot support your own proposal."))
    if proposal.status not in SUPPORTABLE_STATUSES:
        raise ProposalError(_("This proposal cannot be supported any more."))
    now = utcnow()
    added = _insert_ignore(db, Support.__table__, proposal_id=proposal.id, user_id=user.id, created_at=now)
    if added:
        db.execute(
            update(Proposal)
            .where(Proposal.id == proposal.id)
            .values(support_count=Proposal.support_count + 1)
        )
        _check_threshold(db, proposal=proposal, settings=settings, now=now)
    _refresh(db, proposal)
    return added


def _check_threshold(db: Session, *, proposal: Proposal, settings: Settings, now: dt.datetime) -> None:
    if proposal.review_requested_at is not None or proposal.status != ProposalStatus.PUBLISHED:
        return
    since = now - dt.timedelta(days=settings.support_window_days)
    recent = db.execute(
        select(func.count())
        .select_from(Support)
        .where(Support.proposal_id == proposal.id, Support.created_at >= since)
    ).scalar_one()
    if recent < settings.support_threshold:
        return
    marked = db.execute(
        update(Proposal)
        .where(Proposal.id == proposal.id, Proposal.review_requested_at.is_(None))
        .values(review_requested_at=now)
    ).rowcount
    if marked == 1:
        _refresh(db, proposal)
        notifications.notify_staff(db, proposal=proposal, kind="review")


def unsupport(db: Session, *, proposal: Proposal, user: User) -> bool:
    """Withdraw ``user``'s support; True if there was one."""
    proposal = _lock(db, proposal.id)
    if proposal.status not in SUPPORTABLE_STATUSES:
        raise ProposalError(_("Supports of this proposal can no longer be changed."))
    removed = db.execute(
        delete(Support).where(Support.proposal_id == proposal.id, Support.user_id == user.id)
    ).rowcount
    if removed:
        db.execute(
            update(Proposal)
            .where(Proposal.id == proposal.id)
            .values(support_count=Proposal.support_count - removed)
        )
    _refresh(db, proposal)
    return bool(removed)


def follow(db: Session, *, proposal: Proposal, user: User) -> bool:
    return _insert_ignore(db, Follow.__table__, proposal_id=proposal.id, user_id=user.id, created_at=utcnow())


def unfollow(db: Session, *, proposal: Proposal, user: User) -> bool:
    return bool(
        db.execute(
            delete(Follow).where(Follow.proposal_id == proposal.id, Follow.user_id == user.id)
        ).rowcount
    )


def has_supported(db: Session, *, proposal: Proposal, user: User | None) -> bool:
    if user is None:
        return False
    stmt = select(Support.id).where(Support.proposal_id == proposal.id, Support.user_id == user.id)
    return db.execute(stmt).first() is not None


def is_following(db: Session, *, proposal: Proposal, user: User | None) -> bool:
    if user is None:
        return False
    stmt = select(Follow.id).where(Follow.proposal_id == proposal.id, Follow.user_id == user.id)
    return db.execute(stmt).first() is not None


def supported_ids(db: Session, *, user: User | None, proposal_ids: list[int]) -> set[int]:
    """Which of ``proposal_ids`` ``user`` supports (one query for a list page)."""
    if user is None or not proposal_ids:
        return set()
    stmt = select(Support.proposal_id).where(
        Support.user_id == user.id, Support.proposal_id.in_(proposal_ids)
    )
    return set(db.execute(stmt).scalars())
