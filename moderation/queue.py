"""Read models for moderators and the public: the queue (open reports grouped by item), an item in
context with its author's history, and the transparency counts."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import String, and_, case, cast, func, or_, select, tuple_
from sqlmodel import Session

from app.models import User
from moderation.models import Action, Flag, ModerationDecision, ModerationGround
from moderation.services import Item, load_items
from proposals.models import Attachment, Comment, Proposal

PAGE_SIZE = 50
SORTS = {"age", "count"}  # allowlist: never mapped from user input to a column name
TYPES = {"proposal", "comment", "attachment", "profile"}


@dataclass
class QueueEntry:
    item_type: str
    item_id: int
    count: int
    first_at: object
    last_at: object
    categories: dict[str, int] = field(default_factory=dict)
    item: Item | None = None
    held: bool = False


def _in_theme(theme_id: int):
    """Reports about an item of the theme area: a proposal of it, or a comment/attachment on one of its
    proposals. One ``IN (subquery)`` per type instead of outer-joining every report to four tables
    (PostgreSQL, 5,000 open reports: 12 ms → 2 ms; correlated EXISTS under OR planned far worse, 350 ms)."""
    return or_(
        and_(
            Flag.item_type == "proposal",
            Flag.item_id.in_(select(Proposal.id).where(Proposal.theme_id == theme_id)),
        ),
        and_(
            Flag.item_type == "comment",
            Flag.item_id.in_(
                select(Comment.id)
                .join(Proposal, Proposal.id == Comment.proposal_id)
                .where(Proposal.theme_id == theme_id)
            ),
        ),
        and_(
            Flag.item_type == "attachment",
            Flag.item_id.in_(
                select(Attachment.id)
                .join(Proposal, Proposal.id == Attachment.proposal_id)
                .where(Proposal.theme_id == theme_id)
            ),
        ),
    )


def queue(
    db: Session, *, item_type: str = "", theme_id: int | None = None, sort: str = "age", page: int = 1
) -> tuple[list[QueueEntry], int]:
    """Open reports grouped by item (one page) and the number of items with open reports."""
    sort = sort if sort in SORTS else "age"
    count_col = func.count(Flag.id).label("n")
    first_col = func.min(Flag.created_at).label("first_at")
    stmt = select(Flag.item_type, Flag.item_id, count_col, first_col, func.max(Flag.created_at)).where(
        Flag.resolved_by_decision_id.is_(None)
    )
    if item_type in TYPES:
        stmt = stmt.where(Flag.item_type == item_type)
    if theme_id is not None:
        stmt = stmt.where(_in_theme(theme_id))
    # one scan: the groups of the page and, by a window function, how many groups there are
    stmt = stmt.add_columns(func.count().over().label("total")).group_by(Flag.item_type, Flag.item_id)
    order = (count_col.desc(), first_col) if sort == "count" else (first_col, count_col.desc())
    page = max(1, min(page, 10_000))
    rows = db.execute(
        stmt.order_by(*order, Flag.item_type, Flag.item_id).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)
    ).all()
    if rows:
        total = rows[0][-1]
    elif page > 1:
        total = db.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    else:
        total = 0
    entries = [QueueEntry(t, i, n, first, last) for t, i, n, first, last, _total in rows]
    _fill(db, entries)
    return entries, total


def _fill(db: Session, entries: list[QueueEntry]) -> None:
    if not entries:
        return
    keys = {(e.item_type, e.item_id): e for e in entries}
    for t, i, category, n in db.execute(
        select(Flag.item_type, Flag.item_id, Flag.category, func.count(Flag.id))
        # (type, id) pairs: the open-reports index (resolved, type, id, …) answers this without a table scan
        .where(tuple_(Flag.item_type, Flag.item_id).in_(list(keys)), Flag.resolved_by_decision_id.is_(None))
        .group_by(Flag.item_type, Flag.item_id, Flag.category)
    ):
        if (t, i) in keys:
            keys[(t, i)].categories[category] = n
    items = load_items(db, list(keys))
    for e in entries:
        e.item = items.get((e.item_type, e.item_id))


def held(db: Session, *, limit: int = PAGE_SIZE) -> list[QueueEntry]:
    """Content held by pre-moderation, oldest first."""
    rows = db.execute(
        select(ModerationDecision)
        .where(ModerationDecision.action == Action.HOLD.value, ModerationDecision.superseded_at.is_(None))
        .order_by(ModerationDecision.created_at, ModerationDecision.id)
        .limit(limit)
    ).scalars()
    entries = [QueueEntry(d.item_type, d.item_id, 0, d.created_at, d.created_at, held=True) for d in rows]
    items = load_items(db, [(e.item_type, e.item_id) for e in entries])
    for e in entries:
        e.item = items.get((e.item_type, e.item_id))
    return entries


def flags_for(db: Session, *, item_type: str, item_id: int) -> list[Flag]:
    return list(
        db.execute(
            select(Flag)
            .where(Flag.item_type == item_type, Flag.item_id == item_id)
            .order_by(Flag.created_at.desc(), Flag.id.desc())
            .limit(200)
        ).scalars()
    )


def decisions_for_item(db: Session, *, item_type: str, item_id: int) -> list[ModerationDecision]:
    return list(
        db.execute(
            select(ModerationDecision)
            .where(ModerationDecision.item_type == item_type, ModerationDecision.item_id == item_id)
            .order_by(ModerationDecision.created_at.desc(), ModerationDecision.id.desc())
        ).scalars()
    )


def author_history(db: Session, *, author_id: int | None) -> dict[str, object]:
    """The author's record for context: earlier decisions about them and how much they wrote."""
    if author_id is None:
        return {"author": None, "decisions": [], "proposals": 0, "comments": 0}
    decisions = list(
        db.execute(
            select(ModerationDecision)
            .where(
                ModerationDecision.author_id == author_id, ModerationDecision.action != Action.DISMISS.value
            )
            .order_by(ModerationDecision.created_at.desc())
            .limit(20)
        ).scalars()
    )
    return {
        "author": db.get(User, author_id),
        "decisions": decisions,
        "proposals": db.execute(
            select(func.count(Proposal.id)).where(Proposal.author_id == author_id)
        ).scalar(),
        "comments": db.execute(select(func.count(Comment.id)).where(Comment.author_id == author_id)).scalar(),
    }


def transparency(db: Session) -> list[tuple[str, str, str, int]]:
    """(month "YYYY-MM", ground code, outcome, count) over every decision, newest month first."""
    if db.get_bind().dialect.name == "postgresql":
        month = func.to_char(ModerationDecision.created_at, "YYYY-MM")
    else:
        month = func.strftime("%Y-%m", ModerationDecision.created_at)
    ground = func.coalesce(ModerationGround.code, cast("none", String))
    outcome = case(
        (ModerationDecision.appeal_of_id.is_not(None), "appeal_" + ModerationDecision.action),
        else_=ModerationDecision.action,
    )
    rows = db.execute(
        select(month.label("m"), ground.label("g"), outcome.label("o"), func.count(ModerationDecision.id))
        .outerjoin(ModerationGround, ModerationGround.id == ModerationDecision.ground_id)
        .group_by("m", "g", "o")
        .order_by(month.desc(), ground, outcome)
    ).all()
    return [(m, g, o, n) for m, g, o, n in rows]


def report_counts(db: Session) -> list[tuple[str, str, int]]:
    """(month, category, count) of reports received."""
    if db.get_bind().dialect.name == "postgresql":
        month = func.to_char(Flag.created_at, "YYYY-MM")
    else:
        month = func.strftime("%Y-%m", Flag.created_at)
    rows = db.execute(
        select(month.label("m"), Flag.category, func.count(Flag.id))
        .group_by("m", Flag.category)
        .order_by(month.desc(), Flag.category)
    ).all()
    return [(m, c, n) for m, c, n in rows]
