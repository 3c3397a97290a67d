"""Figures for the staff statistics dashboard: counts only, no personal data.

Participants are accounts with a confirmed e-mail address; proposals and comments count only what the
public may see (``proposals.visibility``); supports count supports of public proposals; ballots are the
current ballots of every process (paper ones included), by the day they were first cast (Berlin time)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlmodel import Session

from app.i18n import BERLIN
from app.models import User
from voting.models import Ballot


@dataclass
class Dashboard:
    participants: int
    proposals: int
    comments: int
    supports: int
    ballots: int
    ballots_per_day: list[tuple[dt.date, int]] = field(default_factory=list)
    proposals_per_day: list[tuple[dt.date, int]] = field(default_factory=list)
    per_theme: list[tuple[str, int]] = field(default_factory=list)
    per_district: list[tuple[str, int]] = field(default_factory=list)
    supports_per_theme: list[tuple[str, int]] = field(default_factory=list)


def _count(db: Session, stmt) -> int:
    return int(db.execute(stmt).scalar_one() or 0)


def totals(db: Session) -> dict[str, int]:
    from proposals.models import Comment, Proposal, Support
    from proposals.visibility import public_comment, public_proposal

    return {
        "participants": _count(
            db, select(func.count()).select_from(User).where(User.email_confirmed_at.is_not(None))
        ),
        "proposals": _count(db, select(func.count()).select_from(Proposal).where(public_proposal())),
        "comments": _count(
            db,
            select(func.count())
            .select_from(Comment)
            .join(Proposal, Proposal.id == Comment.proposal_id)
            .where(public_proposal(), public_comment(), Comment.deleted_at.is_(None)),
        ),
        "supports": _count(
            db,
            select(func.count())
            .select_from(Support)
            .join(Proposal, Proposal.id == Support.proposal_id)
            .where(public_proposal()),
        ),
        "ballots": _count(db, select(func.count()).select_from(Ballot)),
    }


def _per_day(values) -> list[tuple[dt.date, int]]:
    """Counts per Berlin day, every day from the first to the last (gaps as 0)."""
    days: Counter[dt.date] = Counter()
    for (stamp,) in values:
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=dt.UTC)
        days[stamp.astimezone(BERLIN).date()] += 1
    if not days:
        return []
    first, last = min(days), max(days)
    out = []
    day = first
    while day <= last:
        out.append((day, days.get(day, 0)))
        day += dt.timedelta(days=1)
    return out


def dashboard(db: Session, *, locale: str = "de") -> Dashboard:
    from proposals import services as proposal_services
    from proposals.models import Proposal, Support
    from proposals.visibility import public_proposal

    t = totals(db)
    data = Dashboard(**t)
    # one timestamp column streamed, counted per day in Python (dates per time zone on both backends)
    data.ballots_per_day = _per_day(db.execute(select(Ballot.cast_at).execution_options(yield_per=5000)))
    data.proposals_per_day = _per_day(
        db.execute(select(Proposal.published_at).where(public_proposal(), Proposal.published_at.is_not(None)))
    )
    themes = proposal_services.themes(db, include_inactive=True)
    by_theme = dict(
        db.execute(
            select(Proposal.theme_id, func.count()).where(public_proposal()).group_by(Proposal.theme_id)
        ).all()
    )
    supports_by_theme = dict(
        db.execute(
            select(Proposal.theme_id, func.count())
            .select_from(Support)
            .join(Proposal, Proposal.id == Support.proposal_id)
            .where(public_proposal())
            .group_by(Proposal.theme_id)
        ).all()
    )
    data.per_theme = [(th.name(locale), int(by_theme.get(th.id, 0))) for th in themes]
    data.supports_per_theme = [(th.name(locale), int(supports_by_theme.get(th.id, 0))) for th in themes]
    by_district = dict(
        db.execute(
            select(Proposal.district_id, func.count()).where(public_proposal()).group_by(Proposal.district_id)
        ).all()
    )
    data.per_district = [
        (d.name, int(by_district.get(d.id, 0)))
        for d in proposal_services.districts(db, include_inactive=True)
    ]
    if by_district.get(None):
        from app.i18n import gettext as _

        data.per_district.append((_("City-wide"), int(by_district[None])))
    return data
