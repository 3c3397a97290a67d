"""Moderation's part of the one visibility rule: an item with a hiding decision in force (hidden, held
for pre-moderation review, or merged as a duplicate) disappears from every public listing, count, search
result, feed and API response, because proposals/visibility.py ANDs these conditions into
``public_proposal()`` / ``public_comment()``.

``install()`` is called once from the composition root (app/main.py).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, exists, select

from moderation.models import HIDING_ACTIONS, Action, ModerationDecision
from proposals import annotations, visibility
from proposals.models import Attachment, Comment, Proposal

_PROPOSAL_ACTIONS = (*HIDING_ACTIONS, Action.DUPLICATE.value)


def _not_hidden(item_type: str, id_column, actions: tuple[str, ...]) -> ColumnElement[bool]:
    return ~exists(
        select(ModerationDecision.id).where(
            ModerationDecision.item_type == item_type,
            ModerationDecision.item_id == id_column,
            ModerationDecision.action.in_(actions),
            ModerationDecision.superseded_at.is_(None),
        )
    )


def proposal_not_hidden() -> ColumnElement[bool]:
    return _not_hidden("proposal", Proposal.id, _PROPOSAL_ACTIONS)


def comment_not_hidden() -> ColumnElement[bool]:
    return and_(_not_hidden("comment", Comment.id, HIDING_ACTIONS))


def attachment_not_hidden() -> ColumnElement[bool]:
    return and_(_not_hidden("attachment", Attachment.id, HIDING_ACTIONS))


def attachment_hidden(db, attachment_id: int) -> bool:
    """For the attachment download and list (proposals code): True while a hide decision is in force."""
    return db.execute(select(_not_hidden("attachment", attachment_id, HIDING_ACTIONS))).scalar() is False


def visibility_changed(db, *, item_type: str, item_id: int) -> None:
    """After a decision that may hide or show an item: keep the counts that the proposals package shows in
    step (a proposal's comment count counts shown comments only)."""
    if item_type != "comment":
        return
    from proposals import comments

    proposal_id = db.execute(select(Comment.proposal_id).where(Comment.id == item_id)).scalar()
    if proposal_id is not None:
        comments.recount(db, proposal_id=proposal_id)


def edit_notes(db, proposal_id: int) -> list[annotations.Note]:
    """The visible notes of moderation edits to a proposal (title or theme area changed), newest last."""
    from app.i18n import gettext as _

    rows = db.execute(
        select(ModerationDecision.created_at, ModerationDecision.note).where(
            ModerationDecision.item_type == "proposal",
            ModerationDecision.item_id == proposal_id,
            ModerationDecision.action == Action.EDIT.value,
            ModerationDecision.superseded_at.is_(None),
        )
    ).all()
    label = _("Changed by the moderation")
    return [annotations.Note(at=at, label=label, text=note) for at, note in rows if note]


def install() -> None:
    """Register the conditions with the one visibility rule (idempotent)."""
    annotations.register(edit_notes)
    visibility.register_filter("proposal", proposal_not_hidden)
    visibility.register_filter("comment", comment_not_hidden)
    visibility.register_filter("attachment", attachment_not_hidden)
    from moderation import premoderation

    premoderation.install()
