"""Proposal use cases: create, edit (with version history), and the lifecycle steps with their audit rows.

Every status change writes a ``ProposalStatusChange`` (from, to, reason, actor, at) in the same
transaction as the change, sets the matching timestamp and notifies the followers. Who may make which
step is data: ``AUTHOR_STEPS`` and ``STAFF_STEPS`` (a subset of ``TRANSITIONS``). Functions never commit.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlmodel import Session

from app import events
from app.database import utcnow
from app.i18n import gettext as _
from app.models import User
from app.sanitize import render_markdown
from proposals import notifications, search
from proposals.models import (
    OPEN_FOR_COMMENTS,
    TRANSITIONS,
    Follow,
    Proposal,
    ProposalStatus,
    ProposalStatusChange,
    ProposalVersion,
)
from proposals.visibility import can_view_proposal, is_public

S = ProposalStatus
AUTHOR_STEPS: frozenset[tuple[str, str]] = frozenset(
    {(S.DRAFT, S.PUBLISHED), (S.PUBLISHED, S.WITHDRAWN), (S.UNDER_REVIEW, S.WITHDRAWN)}
)
STAFF_STEPS: frozenset[tuple[str, str]] = frozenset(
    {
        (S.PUBLISHED, S.UNDER_REVIEW),
        (S.UNDER_REVIEW, S.ACCEPTED),
        (S.UNDER_REVIEW, S.REJECTED),
        (S.ACCEPTED, S.IMPLEMENTED),
    }
)
REASON_REQUIRED = (S.REJECTED,)
EDITABLE = (S.DRAFT, S.PUBLISHED)
assert all(to in TRANSITIONS[frm] for frm, to in AUTHOR_STEPS | STAFF_STEPS)


class ProposalError(Exception):
    """A rule of the proposal domain was broken; ``field`` names the form field, if any."""

    def __init__(self, message: str, field: str = "__all__"):
        super().__init__(message)
        self.field = field


class ProposalNotFound(Exception):
    """No such proposal, or the viewer may not see it (both answer 404)."""


@dataclass(frozen=True)
class ProposalData:
    title: str
    summary: str
    body: str
    theme: int
    district: int | None = None
    address: str = ""
    lat: float | None = None
    lon: float | None = None
    cost: int | None = None


def visible_proposal(db: Session, *, proposal_id: int, viewer: User | None) -> Proposal:
    """The proposal if ``viewer`` may see it (the one visibility rule), else ProposalNotFound."""
    proposal = db.get(Proposal, proposal_id)
    if proposal is None or not can_view_proposal(viewer, proposal, is_public=is_public(db, proposal_id)):
        raise ProposalNotFound(proposal_id)
    return proposal


def is_engaged(proposal: Proposal) -> bool:
    """Others have supported or commented: from now on edits keep the previous text as a version."""
    return proposal.support_count > 0 or proposal.comment_count > 0


def _apply(proposal: Proposal, data: ProposalData) -> None:
    proposal.title = data.title
    proposal.summary = data.summary
    proposal.body_md = data.body
    proposal.body_html = render_markdown(data.body)  # sanitise on write
    proposal.theme_id = data.theme
    proposal.district_id = data.district
    proposal.address = data.address
    proposal.lat, proposal.lon = data.lat, data.lon
    proposal.cost_cents = data.cost


def create_proposal(db: Session, *, author: User, data: ProposalData, publish: bool) -> Proposal:
    """A new draft by ``author`` (who follows it automatically), published at once if ``publish``."""
    now = utcnow()
    proposal = Proposal(
        author_id=author.id,
        theme_id=data.theme,
        title="",
        summary="",
        body_md="",
        body_html="",
        status=S.DRAFT.value,
        created_at=now,
        updated_at=now,
    )
    _apply(proposal, data)
    db.add(proposal)
    db.flush()
    db.add(Follow(proposal_id=proposal.id, user_id=author.id, created_at=now))
    search.index_proposal(db, proposal=proposal)
    if publish:
        change_status(db, proposal=proposal, actor=author, to_status=S.PUBLISHED)
    return proposal


def _changed(proposal: Proposal, data: ProposalData) -> bool:
    before = (
        proposal.title,
        proposal.summary,
        proposal.body_md,
        proposal.theme_id,
        proposal.district_id,
        proposal.address,
        proposal.lat,
        proposal.lon,
        proposal.cost_cents,
    )
    after = (
        data.title,
        data.summary,
        data.body,
        data.theme,
        data.district,
        data.address,
        data.lat,
        data.lon,
        data.cost,
    )
    return before != after


def _lock(db: Session, proposal: Proposal) -> Proposal:
    """Lock the proposal row (PostgreSQL) and reload it, so concurrent requests see each other's work."""
    return db.execute(
        select(Proposal)
        .where(Proposal.id == proposal.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()


def update_proposal(db: Session, *, proposal: Proposal, editor: User, data: ProposalData) -> bool:
    """Edit by the author. Free while nobody supported or commented; afterwards (published only) the
    previous text is kept as a ``ProposalVersion`` and ``version`` goes up. Returns whether it changed."""
    proposal = _lock(db, proposal)
    if editor.id != proposal.author_id or proposal.status not in EDITABLE:
        raise ProposalError(_("This proposal can no longer be edited."))
    if not _changed(proposal, data):
        return False
    now = utcnow()
    if is_engaged(proposal):
        db.add(
            ProposalVersion(
                proposal_id=proposal.id,
                version=proposal.version,
                title=proposal.title,
                summary=proposal.summary,
                body_md=proposal.body_md,
                body_html=proposal.body_html,
                created_at=proposal.updated_at,
                replaced_at=now,
            )
        )
        proposal.version += 1
    _apply(proposal, data)
    proposal.updated_at = now
    db.add(proposal)
    search.index_proposal(db, proposal=proposal)
    return True


def allowed_steps(proposal: Proposal, *, staff: bool) -> list[str]:
    """The statuses ``proposal`` may move to next, for its author (staff=False) or for staff."""
    steps = STAFF_STEPS if staff else AUTHOR_STEPS
    return [to.value for to in ProposalStatus if (proposal.status, to) in steps]


def change_status(
    db: Session, *, proposal: Proposal, actor: User, to_status: str, reason: str = "", by_staff: bool = False
) -> ProposalStatusChange:
    """One lifecycle step, with its audit row and timestamp. ``by_staff`` selects the staff steps (the
    route has checked "proposals.review"); otherwise the actor must be the author."""
    proposal = _lock(db, proposal)
    frm = proposal.status
    steps = STAFF_STEPS if by_staff else AUTHOR_STEPS
    if (frm, to_status) not in steps:
        raise ProposalError(_("This status change is not possible."), "to")
    if not by_staff and actor.id != proposal.author_id:
        raise ProposalError(_("Only the author can do this."))
    to_status = ProposalStatus(to_status).value
    reason = (reason or "").strip()
    if to_status in REASON_REQUIRED and not reason:
        raise ProposalError(_("Please give a public reason for this decision."), "reason")
    now = utcnow()
    proposal.status = to_status
    proposal.status_reason = reason
    proposal.updated_at = now
    if to_status == S.PUBLISHED:
        proposal.published_at = now
    elif to_status in (S.ACCEPTED, S.REJECTED):
        proposal.decided_at = now
    elif to_status == S.IMPLEMENTED:
        proposal.implemented_at = now
    elif to_status == S.WITHDRAWN:
        proposal.withdrawn_at = now
    if to_status not in OPEN_FOR_COMMENTS and proposal.comments_locked_at is None:
        proposal.comments_locked_at = now
    change = ProposalStatusChange(
        proposal_id=proposal.id,
        from_status=frm,
        to_status=to_status,
        reason=reason,
        actor_id=actor.id,
        at=now,
    )
    db.add(proposal)
    db.add(change)
    db.flush()
    if to_status == S.PUBLISHED:
        events.publish(db, "proposal.published", proposal_id=proposal.id)
    notifications.notify_followers(db, proposal=proposal, kind="status", actor=actor)
    return change


def status_history(db: Session, *, proposal: Proposal) -> list[ProposalStatusChange]:
    return list(
        db.execute(
            select(ProposalStatusChange)
            .where(ProposalStatusChange.proposal_id == proposal.id)
            .order_by(ProposalStatusChange.at, ProposalStatusChange.id)
        ).scalars()
    )


def versions(db: Session, *, proposal: Proposal) -> list[ProposalVersion]:
    """Earlier texts, newest first."""
    return list(
        db.execute(
            select(ProposalVersion)
            .where(ProposalVersion.proposal_id == proposal.id)
            .order_by(ProposalVersion.version.desc())
        ).scalars()
    )
