"""Optional pre-moderation: per theme area, and a word list. Matching new content is held (a ``hold``
decision, made by the system) instead of published; the visibility rule keeps it out of every listing
until a moderator restores it (or hides it for good).

The proposals package calls ``hold_if_needed`` right after it creates a proposal or a comment (in the same
transaction); configuration lives in ``ModerationSetting`` rows.
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlmodel import Session

from app.database import utcnow
from moderation.models import Action, ModerationDecision, ModerationSetting
from moderation.visibility import visibility_changed

WORD_LIST = "word_list"
THEME_PREFIX = "premoderate_theme:"


def _setting(db: Session, key: str) -> ModerationSetting | None:
    return db.execute(select(ModerationSetting).where(ModerationSetting.key == key)).scalar_one_or_none()


def word_list(db: Session) -> list[str]:
    row = _setting(db, WORD_LIST)
    if row is None:
        return []
    return [w.strip().casefold() for w in row.value.splitlines() if w.strip()]


def word_list_text(db: Session) -> str:
    """The word list as the admin wrote it (one word per line)."""
    row = _setting(db, WORD_LIST)
    return row.value if row else ""


def set_word_list(db: Session, *, words: str) -> list[str]:
    cleaned = sorted({w.strip() for w in words.splitlines() if w.strip()}, key=str.casefold)
    row = _setting(db, WORD_LIST) or ModerationSetting(key=WORD_LIST)
    row.value = "\n".join(cleaned)
    row.updated_at = utcnow()
    db.add(row)
    db.flush()
    return cleaned


def premoderated_themes(db: Session) -> set[int]:
    keys = db.execute(
        select(ModerationSetting.key).where(
            ModerationSetting.key.like(THEME_PREFIX + "%"), ModerationSetting.value == "1"
        )
    ).scalars()
    return {int(k[len(THEME_PREFIX) :]) for k in keys}


def set_premoderated_themes(db: Session, *, theme_ids: set[int]) -> None:
    rows = {
        r.key: r
        for r in db.execute(
            select(ModerationSetting).where(ModerationSetting.key.like(THEME_PREFIX + "%"))
        ).scalars()
    }
    for key, row in rows.items():
        row.value = "1" if int(key[len(THEME_PREFIX) :]) in theme_ids else "0"
    for theme_id in theme_ids:
        if f"{THEME_PREFIX}{theme_id}" not in rows:
            db.add(ModerationSetting(key=f"{THEME_PREFIX}{theme_id}", value="1"))
    db.flush()


def matching_words(words: list[str], text: str) -> list[str]:
    """Words of the list occurring in ``text`` as whole words (case-insensitive)."""
    folded = text.casefold()
    return [w for w in words if re.search(r"(?<!\w)" + re.escape(w) + r"(?!\w)", folded)]


def hold_if_needed(
    db: Session, *, item_type: str, item: object, text: str, theme_id: int | None
) -> ModerationDecision | None:
    """Hold a new proposal or comment for review if its theme is pre-moderated or its text matches the word
    list; returns the ``hold`` decision (or None when the item is published right away)."""
    reason = ""
    if theme_id is not None and theme_id in premoderated_themes(db):
        reason = "premoderated theme"
    else:
        hits = matching_words(word_list(db), text)
        if hits:
            reason = "word list: " + ", ".join(hits[:10])
    if not reason:
        return None
    decision = ModerationDecision(
        item_type=item_type,
        item_id=item.id,  # type: ignore[attr-defined]
        action=Action.HOLD.value,
        statement="",
        note=reason,
        moderator_id=None,
        author_id=getattr(item, "author_id", None),
    )
    db.add(decision)
    db.flush()
    visibility_changed(db, item_type=item_type, item_id=decision.item_id)
    return decision


# --- wiring through domain events (app/events.py), so proposals never imports moderation -------------------


def on_proposal_published(db: Session, *, proposal_id: int, **_: object) -> None:
    """Handler for "proposal.published": hold the proposal if its theme or its text calls for review."""
    from proposals.models import Proposal

    proposal = db.get(Proposal, proposal_id)
    if proposal is not None:
        text = "\n".join([proposal.title, proposal.summary, proposal.body_md])
        hold_if_needed(db, item_type="proposal", item=proposal, text=text, theme_id=proposal.theme_id)


def on_comment_created(db: Session, *, comment_id: int, **_: object) -> None:
    """Handler for "comment.created": hold the comment if its proposal's theme or its text calls for review."""
    from proposals.models import Comment, Proposal

    comment = db.get(Comment, comment_id)
    if comment is not None:
        theme_id = db.execute(select(Proposal.theme_id).where(Proposal.id == comment.proposal_id)).scalar()
        hold_if_needed(db, item_type="comment", item=comment, text=comment.body_md, theme_id=theme_id)


def install() -> None:
    """Subscribe to the content events once the core defines them (idempotent)."""
    from app import events

    for name, handler in (
        ("proposal.published", on_proposal_published),
        ("comment.created", on_comment_created),
    ):
        if name in events.EVENTS:
            events.subscribe(name, handler)
