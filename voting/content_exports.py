"""Proposals and comments as export rows: only what the public may see (``proposals.visibility``),
without authors' names or e-mail addresses; deleted comments export without text. Filtered by theme,
district, status and a date range; read in batches (``yield_per``). The formats: voting/export_formats.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import Session

from app.database import new_session
from voting import lifecycle
from voting.export_formats import BATCH, Progress, euros


@dataclass
class Lookups:
    """Theme and district names by id (German: the exports are the council's records)."""

    themes: dict[int, str]
    districts: dict[int, str]


def lookups(db: Session) -> Lookups:
    from proposals import services as proposal_services

    return Lookups(
        {t.id: t.name_de for t in proposal_services.themes(db, include_inactive=True) if t.id is not None},
        lifecycle.district_names(db),
    )


# --- proposals and comments ------------------------------------------------------------------------------


@dataclass
class Filters:
    theme_id: int | None = None
    district_id: int | None = None
    status: str | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None  # inclusive


def _day_bounds(filters: Filters) -> tuple[dt.datetime | None, dt.datetime | None]:
    from app.i18n import BERLIN

    start = end = None
    if filters.date_from:
        start = dt.datetime.combine(filters.date_from, dt.time(), BERLIN).astimezone(dt.UTC)
    if filters.date_to:
        end = dt.datetime.combine(filters.date_to + dt.timedelta(days=1), dt.time(), BERLIN).astimezone(
            dt.UTC
        )
    return start, end


def _content_filters(filters: Filters, date_column: Any) -> list[Any]:
    """The WHERE conditions both content exports share: the proposal's theme, district and status, and
    ``date_column`` within the (Berlin) days ``date_from``..``date_to``."""
    from proposals.models import Proposal

    where: list[Any] = []
    if filters.theme_id:
        where.append(Proposal.theme_id == filters.theme_id)
    if filters.district_id:
        where.append(Proposal.district_id == filters.district_id)
    if filters.status:
        where.append(Proposal.status == filters.status)
    start, end = _day_bounds(filters)
    if start:
        where.append(date_column >= start)
    if end:
        where.append(date_column < end)
    return where


PROPOSAL_HEADER = (
    "id",
    "title",
    "summary",
    "status",
    "theme",
    "district",
    "cost_eur",
    "supports",
    "comments",
    "published_at",
    "decided_at",
    "status_reason",
)


def proposal_rows(
    engine: Engine, filters: Filters, on_progress: Progress | None = None
) -> Iterator[list[Any]]:
    """Public proposals (never drafts or hidden ones), filtered; no author data."""
    from proposals.models import Proposal
    from proposals.visibility import public_proposal

    with new_session(engine) as db:
        names = lookups(db)
        where = [public_proposal(), *_content_filters(filters, Proposal.published_at)]
        stmt = select(Proposal).where(*where).order_by(Proposal.id).execution_options(yield_per=BATCH)
        for n, p in enumerate(db.execute(stmt).scalars(), start=1):
            yield [
                p.id,
                p.title,
                p.summary,
                p.status,
                names.themes.get(p.theme_id, ""),
                names.districts.get(p.district_id or 0, ""),
                euros(p.cost_cents),
                p.support_count,
                p.comment_count,
                p.published_at,
                p.decided_at,
                p.status_reason,
            ]
            if on_progress is not None and n % BATCH == 0:
                on_progress(n, 0)
            if n % BATCH == 0:
                db.expunge_all()


COMMENT_HEADER = (
    "id",
    "proposal_id",
    "proposal_title",
    "parent_id",
    "created_at",
    "edited_at",
    "deleted",
    "score",
    "text",
)


def comment_rows(
    engine: Engine, filters: Filters, on_progress: Progress | None = None
) -> Iterator[list[Any]]:
    """Visible comments on public proposals, filtered by the proposal's theme/district/status and the
    comment's date; deleted comments without text; no author data."""
    from proposals.models import Comment, Proposal
    from proposals.visibility import public_comment, public_proposal

    with new_session(engine) as db:
        where = [public_proposal(), public_comment(), *_content_filters(filters, Comment.created_at)]
        stmt = (
            select(
                Comment.id,
                Comment.proposal_id,
                Proposal.title,
                Comment.parent_id,
                Comment.created_at,
                Comment.edited_at,
                Comment.deleted_at,
                Comment.score,
                Comment.body_md,
            )
            .join(Proposal, Proposal.id == Comment.proposal_id)
            .where(*where)
            .order_by(Comment.id)
            .execution_options(yield_per=BATCH)
        )
        for n, row in enumerate(db.execute(stmt), start=1):
            cid, pid, title, parent, created, edited, deleted, score, body = row
            yield [
                cid,
                pid,
                title,
                parent,
                created,
                edited,
                deleted is not None,
                score,
                "" if deleted else body,
            ]
            if on_progress is not None and n % BATCH == 0:
                on_progress(n, 0)
