"""Named permissions for proposals, built from small predicates (object level: the proposal).

Routes call ``require(request, "proposals.edit", proposal)``; templates call ``can("proposals.edit", p)``.
Who may make which lifecycle step is data (``AUTHOR_STEPS`` / ``STAFF_STEPS`` in proposals/lifecycle.py);
these permissions say who may act on a proposal in its current status at all.
"""

from __future__ import annotations

from typing import Any

from app.models import User
from app.permissions import Predicate, all_of, is_authenticated, is_staff, register
from proposals.models import Proposal, ProposalStatus

EDITABLE_STATUSES = (ProposalStatus.DRAFT, ProposalStatus.PUBLISHED)
SUPPORTABLE_STATUSES = (ProposalStatus.PUBLISHED, ProposalStatus.UNDER_REVIEW)
WITHDRAWABLE_STATUSES = (ProposalStatus.PUBLISHED, ProposalStatus.UNDER_REVIEW)
REVIEWABLE_STATUSES = (ProposalStatus.PUBLISHED, ProposalStatus.UNDER_REVIEW, ProposalStatus.ACCEPTED)


def is_author(user: User | None, proposal: Any = None) -> bool:
    return (
        is_authenticated(user)
        and isinstance(proposal, Proposal)
        and user is not None
        and proposal.author_id == user.id
    )


def is_not_author(user: User | None, proposal: Any = None) -> bool:
    return isinstance(proposal, Proposal) and (user is None or proposal.author_id != user.id)


def in_status(*statuses: str) -> Predicate:
    values = {str(s) for s in statuses}

    def predicate(_user: User | None, proposal: Any = None) -> bool:
        return isinstance(proposal, Proposal) and proposal.status in values

    return predicate


def _review(user: User | None, proposal: Any = None) -> bool:
    """Staff (and admins) review; with a proposal, only while it has a staff step left."""
    if not is_staff(user):
        return False
    return proposal is None or in_status(*REVIEWABLE_STATUSES)(user, proposal)


can_edit = all_of(is_author, in_status(*EDITABLE_STATUSES))
can_publish = all_of(is_author, in_status(ProposalStatus.DRAFT))
can_withdraw = all_of(is_author, in_status(*WITHDRAWABLE_STATUSES))
can_support = all_of(is_authenticated, is_not_author, in_status(*SUPPORTABLE_STATUSES))
can_attach = all_of(is_author, in_status(*EDITABLE_STATUSES))

register("proposals.create", is_authenticated, "Write a proposal (draft or published)")
register("proposals.edit", can_edit, "Edit one's own proposal while it is a draft or published")
register("proposals.publish", can_publish, "Publish one's own draft")
register("proposals.withdraw", can_withdraw, "Withdraw one's own published proposal or one under review")
register("proposals.support", can_support, "Support (or un-support) someone else's open proposal")
register("proposals.follow", is_authenticated, "Follow a proposal (notifications)")
register("proposals.review", _review, "Staff: review queue and status changes with a public reason")
register("proposals.attach", can_attach, "Add or delete attachments of one's own editable proposal")
