"""The one visibility rule for proposals and comments. Every public listing, count, search result, feed,
export and API response builds its query with these conditions, so drafts (and, once moderation lands,
hidden or pending content) never leak (CVE-2024-27090, CVE-2026-40870).

Moderation adds its own conditions through ``register_filter`` (from the composition root), so this module
stays free of moderation imports.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import ColumnElement, and_, true

from app.models import User
from app.permissions import is_moderator, is_staff
from proposals.models import PUBLIC_STATUSES, Comment, Proposal, ProposalStatus

# kind ("proposal" | "comment") -> functions returning an extra SQL condition for that kind
_filters: dict[str, list[Callable[[], ColumnElement[bool]]]] = {
    "proposal": [],
    "comment": [],
    "attachment": [],
}


def register_filter(kind: str, condition: Callable[[], ColumnElement[bool]]) -> None:
    if condition not in _filters[kind]:
        _filters[kind].append(condition)


def public_proposal() -> ColumnElement[bool]:
    """Proposals anyone may see: published or later in the lifecycle, and not hidden."""
    return and_(Proposal.status.in_([s.value for s in PUBLIC_STATUSES]), *(f() for f in _filters["proposal"]))


def public_comment() -> ColumnElement[bool]:
    """Comments anyone may see (deleted ones stay as placeholders; their text is never shown)."""
    extra = [f() for f in _filters["comment"]]
    return and_(true(), *extra) if extra else true()


def public_attachment() -> ColumnElement[bool]:
    """Attachments anyone may see on a visible proposal (moderation may hide single files)."""
    extra = [f() for f in _filters["attachment"]]
    return and_(true(), *extra) if extra else true()


def can_view_proposal(viewer: User | None, proposal: Proposal, *, is_public: bool) -> bool:
    """Object-level check for one proposal page: the public, its author (drafts), moderators and staff."""
    if is_public:
        return True
    if viewer is not None and viewer.id == proposal.author_id:
        return True
    return is_moderator(viewer) or (is_staff(viewer) and proposal.status != ProposalStatus.DRAFT)


def is_public(db, proposal_id: int) -> bool:
    from sqlalchemy import select

    return (
        db.execute(select(Proposal.id).where(Proposal.id == proposal_id, public_proposal())).first()
        is not None
    )


__all__ = [
    "public_proposal",
    "public_comment",
    "public_attachment",
    "can_view_proposal",
    "is_public",
    "register_filter",
    "Comment",
]
