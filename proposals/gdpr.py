"""What deleting an account does to proposals and comments (plugin of app/gdpr.py, listed in
app.main.GDPR_MODULES).

``anonymise``: everything stays, shown under "deleted account" (the user row is anonymised by app/gdpr.py).
``remove``: comments become "deleted" placeholders (threads keep their shape, counts drop); proposals lose
their text, place, history and attachments, drafts go entirely, public ones stay as a withdrawn
"deleted proposal" stub so other people's comments and any budget project built on them keep their anchor.
Supports and comment votes stay counted in both modes (they name no one once the account is anonymised)."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlmodel import Session

from app.database import utcnow
from app.i18n import gettext as _
from app.models import User
from app.settings import Settings
from proposals import search
from proposals.attachments import _files, storage_path
from proposals.comments import recount
from proposals.models import Attachment, Comment, Proposal, ProposalStatus, ProposalVersion

KEEP_ON_ERASE = {"support", "comment_vote"}


def erase(db: Session, settings: Settings, user: User, mode: str) -> None:
    if mode != "remove":
        return
    now = utcnow()
    touched = set(
        db.execute(
            update(Comment)
            .where(Comment.author_id == user.id, Comment.deleted_at.is_(None))
            .values(deleted_at=now, body_md="", body_html="")
            .returning(Comment.proposal_id)
            .execution_options(synchronize_session=False)
        ).scalars()
    )
    for proposal_id in sorted(touched):
        recount(db, proposal_id=proposal_id)
    proposals = list(db.execute(select(Proposal).where(Proposal.author_id == user.id)).scalars())
    _written, doomed = _files(db)
    for proposal in proposals:
        for attachment in db.execute(
            select(Attachment).where(Attachment.proposal_id == proposal.id)
        ).scalars():
            doomed.append(
                storage_path(settings, attachment)
            )  # deleted from disk once the transaction commits
        db.execute(delete(Attachment).where(Attachment.proposal_id == proposal.id))
        db.execute(delete(ProposalVersion).where(ProposalVersion.proposal_id == proposal.id))
        search.remove_proposal(db, proposal_id=proposal.id)
        if proposal.published_at is None:
            db.delete(proposal)
            continue
        proposal.title = _("Deleted proposal")
        proposal.summary = ""
        proposal.body_md = proposal.body_html = ""
        proposal.address = ""
        proposal.lat = proposal.lon = None
        proposal.cost_cents = None
        if proposal.status in (ProposalStatus.PUBLISHED, ProposalStatus.UNDER_REVIEW):
            proposal.status = ProposalStatus.WITHDRAWN.value
            proposal.withdrawn_at = now
        proposal.status_reason = ""
        proposal.updated_at = now
        db.add(proposal)
    db.flush()
