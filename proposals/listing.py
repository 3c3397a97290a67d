"""Proposal lists: filters and sort orders from an allowlist, pagination, the stable random order, counts.

Filter and sort keys are looked up in fixed tables; user input is never mapped to a column
(CVE-2023-34090, CVE-2026-45376). Numbers are parsed, never echoed (CVE-2024-32469). Every query
starts from the one visibility rule ``public_proposal()``; only "mine" adds the viewer's own drafts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, NamedTuple
from urllib.parse import urlencode

from sqlalchemy import BigInteger, Select, and_, case, func, literal, or_, select
from sqlmodel import Session

from app.database import utcnow
from app.models import User
from proposals import search
from proposals.models import District, Follow, Proposal, ProposalStatus, Theme
from proposals.visibility import public_proposal

PAGE_SIZE = 20
MAX_PAGE = 10_000
# The stable random order: a hash of (seed, id) in 64-bit integer arithmetic modulo the prime P.
RANDOM_A = 48_271
RANDOM_P = 2_147_483_647
S = ProposalStatus
STATUS_FILTERS: dict[str, tuple[str, ...]] = {
    "open": (S.PUBLISHED, S.UNDER_REVIEW),
    "published": (S.PUBLISHED,),
    "under_review": (S.UNDER_REVIEW,),
    "accepted": (S.ACCEPTED,),
    "rejected": (S.REJECTED,),
    "implemented": (S.IMPLEMENTED,),
    "withdrawn": (S.WITHDRAWN,),
}
SORTS = ("newest", "supported", "discussed", "random")
SCOPES = ("all", "mine", "followed")


class Card(NamedTuple):
    proposal: Proposal
    theme: Theme
    district: District | None


@dataclass(frozen=True)
class ListQuery:
    """A parsed, allowlisted list request. ``theme``/``district`` are slugs known to exist."""

    theme: str = ""
    district: str = ""
    status: str = ""
    scope: str = "all"
    sort: str = "newest"
    q: str = ""
    review: bool = False
    page: int = 1

    def params(self, *, page: int | None = None, fixed_theme: bool = False) -> str:
        """The query string for this list (another page), from the parsed values only."""
        values: dict[str, Any] = {
            "theme": "" if fixed_theme else self.theme,
            "district": self.district,
            "status": self.status,
            "scope": "" if self.scope == "all" else self.scope,
            "sort": self.sort,
            "q": self.q,
            "review": "1" if self.review else "",
            "page": page if page and page > 1 else "",
        }
        return urlencode({k: v for k, v in values.items() if v})

    @property
    def is_filtered(self) -> bool:
        return bool(
            self.theme or self.district or self.status or self.scope != "all" or self.q or self.review
        )


def _int(value: Any, default: int, *, lo: int, hi: int) -> int:
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return default
    return min(max(number, lo), hi)


def parse_query(
    params: Mapping[str, Any],
    *,
    theme_slugs: set[str],
    district_slugs: set[str],
    signed_in: bool,
    staff: bool,
    theme: str = "",
) -> ListQuery:
    """Read the list parameters; anything not in an allowlist falls back to the default."""

    def pick(name: str, allowed) -> str:
        value = params.get(name, "")
        return value if isinstance(value, str) and value in allowed else ""

    q = params.get("q", "")
    # NUL would reach PostgreSQL as a string literal it refuses (a 500): a separator like any other
    q = " ".join(q.replace("\x00", " ").split())[: search.MAX_QUERY] if isinstance(q, str) else ""
    sort = pick("sort", (*SORTS, "relevance") if q else SORTS) or ("relevance" if q else "newest")
    return ListQuery(
        theme=theme or pick("theme", theme_slugs),
        district=pick("district", district_slugs),
        status=pick("status", STATUS_FILTERS),
        scope=(pick("scope", SCOPES) or "all") if signed_in else "all",
        sort=sort,
        q=q,
        review=staff and params.get("review") == "1",
        page=_int(params.get("page"), 1, lo=1, hi=MAX_PAGE),
    )


@dataclass
class ResultPage:
    query: ListQuery
    cards: list[Card]
    total: int
    pages: int

    @property
    def page(self) -> int:
        return self.query.page


def _base(viewer: User | None, query: ListQuery) -> Select:
    stmt = (
        select(Proposal, Theme, District)
        .join(Theme, Theme.id == Proposal.theme_id)
        .outerjoin(District, District.id == Proposal.district_id)
    )
    if query.scope == "mine" and viewer is not None:
        return stmt.where(Proposal.author_id == viewer.id)
    stmt = stmt.where(public_proposal())
    if query.scope == "followed" and viewer is not None:
        followed = select(Follow.proposal_id).where(Follow.user_id == viewer.id)
        stmt = stmt.where(Proposal.id.in_(followed))
    return stmt


def random_order(seed: int):
    """A deterministic shuffle per seed, the same on SQLite and PostgreSQL (64-bit integer arithmetic):
    x = (id * m + c) mod P with m and c derived from the seed, then two squaring rounds mod P to break up
    the arithmetic progressions a linear map leaves (rare ties are broken by id)."""
    m = int(seed) % RANDOM_P or 1
    c = (m * RANDOM_A) % RANDOM_P
    p = literal(RANDOM_P, BigInteger)
    x = (Proposal.id * literal(m, BigInteger) + literal(c, BigInteger)) % p
    y = (x * x + literal(m, BigInteger)) % p
    return (y * y) % p


def list_proposals(db: Session, *, query: ListQuery, viewer: User | None, seed: int = 1) -> ResultPage:
    stmt = _base(viewer, query)
    if query.theme:
        stmt = stmt.where(Theme.slug == query.theme)
    if query.district:
        stmt = stmt.where(District.slug == query.district)
    if query.status:
        stmt = stmt.where(Proposal.status.in_([s.value for s in STATUS_FILTERS[query.status]]))
    if query.review:
        stmt = stmt.where(needs_review())
    relevance = None
    if query.q:
        matched = search.apply(db, stmt, query.q)
        stmt, relevance = matched.stmt, matched.relevance
    # Count and page over ids only (the sort columns are indexed), then load the page's 20 full rows.
    total = db.execute(stmt.with_only_columns(func.count(Proposal.id)).order_by(None)).scalar_one()
    # Public proposals always have published_at (set by the lifecycle), so "newest" can use its index;
    # only the author's own list ("mine") contains drafts without it.
    newest = (
        func.coalesce(Proposal.published_at, Proposal.created_at).desc()
        if query.scope == "mine"
        else Proposal.published_at.desc()
    )
    orders = {
        "newest": (newest, Proposal.id.desc()),
        "supported": (Proposal.support_count.desc(), Proposal.id.desc()),
        "discussed": (Proposal.comment_count.desc(), Proposal.id.desc()),
        "random": (random_order(seed), Proposal.id),
        "relevance": (relevance, Proposal.id.desc())
        if relevance is not None
        else (newest, Proposal.id.desc()),
    }
    pages = max(1, -(-total // PAGE_SIZE))
    query = replace(query, page=min(query.page, pages))
    ids = list(
        db.execute(
            stmt.with_only_columns(Proposal.id)
            .order_by(*orders[query.sort])
            .offset((query.page - 1) * PAGE_SIZE)
            .limit(PAGE_SIZE)
        ).scalars()
    )
    by_id = (
        {row[0].id: row for row in db.execute(stmt.where(Proposal.id.in_(ids)).order_by(None)).all()}
        if ids
        else {}
    )
    rows = [by_id[i] for i in ids if i in by_id]
    return ResultPage(query=query, cards=[Card(*row) for row in rows], total=total, pages=pages)


def needs_review():
    """Proposals for the council: reached the support threshold while published, or under review."""
    return or_(
        and_(Proposal.status == S.PUBLISHED.value, Proposal.review_requested_at.is_not(None)),
        Proposal.status == S.UNDER_REVIEW.value,
    )


def review_queue(db: Session) -> list[Card]:
    stmt = (
        select(Proposal, Theme, District)
        .join(Theme, Theme.id == Proposal.theme_id)
        .outerjoin(District, District.id == Proposal.district_id)
        .where(public_proposal(), needs_review())
        .order_by(func.coalesce(Proposal.review_requested_at, Proposal.published_at), Proposal.id)
    )
    return [Card(*row) for row in db.execute(stmt).all()]


@dataclass(frozen=True)
class ThemeActivity:
    proposals: int = 0
    new: int = 0


def theme_activity(
    db: Session, *, days: int = 30, now: dt.datetime | None = None
) -> dict[int, ThemeActivity]:
    """Per theme id: public proposals, and how many of them were published in the last ``days``."""
    since = (now or utcnow()) - dt.timedelta(days=days)
    new = func.sum(case((Proposal.published_at >= since, 1), else_=0))
    stmt = (
        select(Proposal.theme_id, func.count(Proposal.id), new)
        .where(public_proposal())
        .group_by(Proposal.theme_id)
    )
    return {
        theme_id: ThemeActivity(int(count), int(fresh or 0)) for theme_id, count, fresh in db.execute(stmt)
    }


@dataclass(frozen=True)
class ThemeCounts:
    proposals: int
    supports: int
    comments: int


def theme_counts(db: Session, *, theme: Theme) -> ThemeCounts:
    stmt = select(
        func.count(Proposal.id),
        func.coalesce(func.sum(Proposal.support_count), 0),
        func.coalesce(func.sum(Proposal.comment_count), 0),
    ).where(Proposal.theme_id == theme.id, public_proposal())
    proposals, supports, comments = db.execute(stmt).one()
    return ThemeCounts(int(proposals), int(supports), int(comments))


def latest(db: Session, *, limit: int = 5) -> list[Card]:
    stmt = (
        select(Proposal, Theme, District)
        .join(Theme, Theme.id == Proposal.theme_id)
        .outerjoin(District, District.id == Proposal.district_id)
        .where(public_proposal())
        .order_by(Proposal.published_at.desc(), Proposal.id.desc())
        .limit(limit)
    )
    return [Card(*row) for row in db.execute(stmt).all()]
