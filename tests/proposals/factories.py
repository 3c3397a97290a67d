"""Generic factories for tests that need proposals, comments and follows as plain rows (no services).

``make_proposal(db, author, theme_slug=..., status=...)`` inserts a proposal directly (body_html from
render_markdown, published_at set for public statuses), so tests of other features do not depend on the
proposal use cases.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from app.database import new_session, utcnow
from app.models import User
from app.sanitize import render_markdown
from proposals.models import PUBLIC_STATUSES, Comment, Follow, Proposal, ProposalStatus, Theme


def _theme_id(session, slug: str | None) -> int:
    stmt = select(Theme.id).order_by(Theme.position, Theme.id)
    if slug:
        stmt = select(Theme.id).where(Theme.slug == slug)
    theme_id = session.execute(stmt).scalars().first()
    assert theme_id is not None, f"no theme {slug!r}"
    return theme_id


def make_proposal(
    db,
    author: User,
    *,
    theme_slug: str | None = None,
    status: str = ProposalStatus.PUBLISHED,
    title: str = "Mehr Bänke im Von-der-Heydt-Park",
    summary: str = "Zum Ausruhen auf dem Weg zum Zoo.",
    body: str = "Bitte **zehn** neue Bänke entlang des Hauptwegs.",
    **fields: Any,
) -> Proposal:
    """A proposal row in ``status`` (default published) in the theme ``theme_slug`` (default: the first)."""
    now = utcnow()
    with new_session(db.engine, write=True) as s:
        proposal = Proposal(
            author_id=author.id,
            theme_id=_theme_id(s, theme_slug),
            title=title,
            summary=summary,
            body_md=body,
            body_html=render_markdown(body),
            status=str(status),
            published_at=now if status in PUBLIC_STATUSES else None,
            **fields,
        )
        s.add(proposal)
        s.commit()
        s.refresh(proposal)
        return proposal


def make_comment(
    db,
    proposal: Proposal,
    author: User,
    body: str = "Gute Idee!",
    *,
    parent: Comment | None = None,
    age: dt.timedelta | None = None,
    **fields: Any,
) -> Comment:
    """A comment row (counted in the proposal's comment_count), optionally ``age`` old."""
    from sqlalchemy import update

    with new_session(db.engine, write=True) as s:
        comment = Comment(
            proposal_id=proposal.id,
            author_id=author.id,
            parent_id=parent.id if parent else None,
            depth=parent.depth + 1 if parent else 0,
            body_md=body,
            body_html=render_markdown(body),
            created_at=utcnow() - (age or dt.timedelta(0)),
            **fields,
        )
        s.add(comment)
        if comment.deleted_at is None:
            s.execute(
                update(Proposal)
                .where(Proposal.id == proposal.id)
                .values(comment_count=Proposal.comment_count + 1)
            )
        s.commit()
        s.refresh(comment)
        return comment


def follow(db, proposal: Proposal, *users: User) -> None:
    with new_session(db.engine, write=True) as s:
        for user in users:
            s.add(Follow(proposal_id=proposal.id, user_id=user.id))
        s.commit()


def reload(db, model, obj_id: int):
    """The row as stored now."""
    with new_session(db.engine, write=True) as s:
        return s.get(model, obj_id)
