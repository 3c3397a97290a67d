"""Moderation use cases: report, decide (with a statement of reasons), appeal once to another moderator.

Plain functions with keyword-only arguments; they never commit (the request's unit of work does), so a
decision, its effects, its notice and its audit-log entry land together or not at all.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from app import i18n
from app.accounts import services as accounts
from app.database import utcnow
from app.i18n import gettext as _
from app.mail import send_mail
from app.models import User
from app.permissions import is_admin, is_moderator
from app.settings import Settings
from moderation.defaults import DEFAULT_GROUNDS
from moderation.models import (
    HIDING_ACTIONS,
    RESTRICTING_ACTIONS,
    Action,
    Appeal,
    Category,
    Flag,
    ItemType,
    ModerationDecision,
    ModerationGround,
    ModerationNotice,
)
from moderation.visibility import visibility_changed
from proposals.models import Attachment, Comment, Follow, Proposal, Support, Theme

log = logging.getLogger("mitmachen.moderation")

MAX_EXPLANATION = 2000
MAX_STATEMENT = 5000
MAX_SUSPENSION_DAYS = 365
BAN_DAYS = 365 * 100  # a ban is a permanent suspension (sessions revoked by accounts.suspend)

# Which actions apply to which kind of item.
ACTIONS_FOR: dict[str, tuple[str, ...]] = {
    ItemType.PROPOSAL: (
        "dismiss",
        "hide",
        "restore",
        "edit",
        "duplicate",
        "lock_comments",
        "warn",
        "suspend",
        "ban",
    ),
    ItemType.COMMENT: ("dismiss", "hide", "restore", "warn", "suspend", "ban"),
    ItemType.ATTACHMENT: ("dismiss", "hide", "restore", "warn", "suspend", "ban"),
    ItemType.PROFILE: ("dismiss", "warn", "suspend", "ban"),
}
# Hiding a proposal's duplicate removes it from listings too (its supports moved to the target).
IN_FORCE_ACTIONS = (*HIDING_ACTIONS, Action.DUPLICATE.value)


class ModerationError(ValueError):
    def __init__(self, message: str, field: str = "__all__"):
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass
class Item:
    """A reportable thing: its type and id, the row, its author, and where it lives (for the queue)."""

    type: str
    id: int
    obj: object
    author_id: int | None
    proposal_id: int | None
    theme_id: int | None

    @property
    def key(self) -> str:
        return f"{self.type}:{self.id}"


def category_labels() -> dict[str, str]:
    return {
        Category.ILLEGAL: _("Illegal content"),
        Category.INSULT: _("Insult or harassment"),
        Category.SPAM: _("Spam or advertising"),
        Category.PERSONAL_DATA: _("Personal data"),
        Category.OFF_TOPIC: _("Off-topic"),
        Category.DUPLICATE: _("Duplicate"),
        Category.OTHER: _("Other"),
    }


def action_labels() -> dict[str, str]:
    return {
        Action.DISMISS: _("Dismiss the reports"),
        Action.HIDE: _("Hide"),
        Action.RESTORE: _("Restore"),
        Action.EDIT: _("Edit title or theme area"),
        Action.DUPLICATE: _("Mark as duplicate"),
        Action.LOCK_COMMENTS: _("Lock comments"),
        Action.WARN: _("Warn the author"),
        Action.SUSPEND: _("Suspend the account"),
        Action.BAN: _("Ban the account"),
        Action.HOLD: _("Held for review"),
        Action.CONFIRM: _("Decision confirmed"),
    }


def item_type_labels() -> dict[str, str]:
    return {
        ItemType.PROPOSAL: _("Proposal"),
        ItemType.COMMENT: _("Comment"),
        ItemType.ATTACHMENT: _("Attachment"),
        ItemType.PROFILE: _("Profile"),
    }


# --- items -------------------------------------------------------------------------------------------------


def load_item(db: Session, *, item_type: str, item_id: int) -> Item | None:
    """The item, or None if it does not exist or was deleted (deleted items cannot be reported)."""
    if item_type == ItemType.PROPOSAL:
        p = db.get(Proposal, item_id)
        return Item(item_type, item_id, p, p.author_id, p.id, p.theme_id) if p else None
    if item_type == ItemType.COMMENT:
        c = db.get(Comment, item_id)
        if c is None or c.deleted_at is not None:
            return None
        theme_id = db.execute(select(Proposal.theme_id).where(Proposal.id == c.proposal_id)).scalar()
        return Item(item_type, item_id, c, c.author_id, c.proposal_id, theme_id)
    if item_type == ItemType.ATTACHMENT:
        a = db.get(Attachment, item_id)
        if a is None:
            return None
        theme_id = db.execute(select(Proposal.theme_id).where(Proposal.id == a.proposal_id)).scalar()
        return Item(item_type, item_id, a, a.uploader_id, a.proposal_id, theme_id)
    if item_type == ItemType.PROFILE:
        u = db.get(User, item_id)
        if u is None or u.is_deleted:
            return None
        return Item(item_type, item_id, u, u.id, None, None)
    return None


def load_items(db: Session, keys: list[tuple[str, int]]) -> dict[tuple[str, int], Item]:
    """Many items at once (one query per type, for the queue); deleted ones are left out."""
    by_type: dict[str, list[int]] = {}
    for item_type, item_id in keys:
        by_type.setdefault(item_type, []).append(item_id)
    found: dict[tuple[str, int], Item] = {}
    if ids := by_type.get(ItemType.PROPOSAL):
        for p in db.execute(select(Proposal).where(Proposal.id.in_(ids))).scalars():
            found[("proposal", p.id)] = Item("proposal", p.id, p, p.author_id, p.id, p.theme_id)  # type: ignore[index,arg-type]
    if ids := by_type.get(ItemType.COMMENT):
        stmt = (
            select(Comment, Proposal.theme_id)
            .join(Proposal, Proposal.id == Comment.proposal_id)
            .where(Comment.id.in_(ids), Comment.deleted_at.is_(None))
        )
        for c, theme_id in db.execute(stmt).all():
            found[("comment", c.id)] = Item("comment", c.id, c, c.author_id, c.proposal_id, theme_id)
    if ids := by_type.get(ItemType.ATTACHMENT):
        stmt = select(Attachment, Proposal.theme_id).join(Proposal, Proposal.id == Attachment.proposal_id)
        for a, theme_id in db.execute(stmt.where(Attachment.id.in_(ids))).all():
            found[("attachment", a.id)] = Item("attachment", a.id, a, a.uploader_id, a.proposal_id, theme_id)
    if ids := by_type.get(ItemType.PROFILE):
        for u in db.execute(select(User).where(User.id.in_(ids), User.deleted_at.is_(None))).scalars():
            found[("profile", u.id)] = Item("profile", u.id, u, u.id, None, None)  # type: ignore[arg-type]
    return found


def in_force(db: Session, *, item_type: str, item_id: int, actions: tuple[str, ...] = IN_FORCE_ACTIONS):
    """The decisions hiding this item now (not superseded)."""
    return list(
        db.execute(
            select(ModerationDecision).where(
                ModerationDecision.item_type == item_type,
                ModerationDecision.item_id == item_id,
                ModerationDecision.action.in_(actions),
                ModerationDecision.superseded_at.is_(None),
            )
        ).scalars()
    )


def is_hidden(db: Session, *, item_type: str, item_id: int) -> bool:
    return bool(in_force(db, item_type=item_type, item_id=item_id))


# --- grounds -----------------------------------------------------------------------------------------------


def active_grounds(db: Session) -> list[ModerationGround]:
    return list(
        db.execute(
            select(ModerationGround)
            .where(ModerationGround.active.is_(True))
            .order_by(ModerationGround.position, ModerationGround.id)
        ).scalars()
    )


def ensure_default_grounds(db: Session, settings: Settings | None = None) -> None:
    """Demo/config loader: the default grounds (the migration seeds the same list), idempotent."""
    existing = set(db.execute(select(ModerationGround.code)).scalars())
    for position, (code, de, en, kind) in enumerate(DEFAULT_GROUNDS):
        if code not in existing:
            db.add(ModerationGround(code=code, title_de=de, title_en=en, kind=kind, position=position))
    db.flush()


# --- reports -----------------------------------------------------------------------------------------------


def reporter_key(*, reporter: User | None, ip: str, secret_key: str) -> str:
    """ "u:<id>" for accounts; a keyed hash of the IP address for visitors (no raw IP stored)."""
    if reporter is not None:
        return f"u:{reporter.id}"
    digest = hmac.new(secret_key.encode(), f"report-ip:{ip}".encode(), hashlib.sha256).hexdigest()
    return f"ip:{digest[:64]}"


def report(
    db: Session,
    *,
    reporter: User | None,
    ip: str,
    secret_key: str,
    item_type: str,
    item_id: int,
    category: str,
    explanation: str,
) -> tuple[Flag, bool]:
    """File a report; returns (flag, created). The same reporter reporting the same item again counts once."""
    if item_type not in ACTIONS_FOR:
        raise ModerationError(_("This item cannot be reported."))
    item = load_item(db, item_type=item_type, item_id=item_id)
    if item is None:
        raise ModerationError(_("This item no longer exists."))
    if category not in {c.value for c in Category}:
        raise ModerationError(_("Please choose one of the options."), "category")
    explanation = (explanation or "").strip()
    if "\x00" in explanation:
        raise ModerationError(_("This field contains characters that are not allowed."), "explanation")
    if len(explanation) > MAX_EXPLANATION:
        raise ModerationError(
            _("Please use at most %(count)s characters.", count=MAX_EXPLANATION), "explanation"
        )
    key = reporter_key(reporter=reporter, ip=ip, secret_key=secret_key)
    existing = _existing_flag(db, item_type, item_id, key)
    if existing is not None:
        return existing, False
    flag = Flag(
        reporter_id=reporter.id if reporter else None,
        reporter_key=key,
        item_type=item_type,
        item_id=item_id,
        category=category,
        explanation=explanation,
    )
    try:
        with db.begin_nested():
            db.add(flag)
    except IntegrityError:  # a parallel request from the same reporter won the race
        existing = _existing_flag(db, item_type, item_id, key)
        assert existing is not None
        return existing, False
    log.info("report item=%s:%s category=%s", item_type, item_id, category)
    return flag, True


def _existing_flag(db: Session, item_type: str, item_id: int, key: str) -> Flag | None:
    return db.execute(
        select(Flag).where(Flag.item_type == item_type, Flag.item_id == item_id, Flag.reporter_key == key)
    ).scalar_one_or_none()


# --- decisions ---------------------------------------------------------------------------------------------


def _ground(db: Session, ground_id: int | None, *, required: bool) -> ModerationGround | None:
    if ground_id is None:
        if required:
            raise ModerationError(_("Please choose a ground."), "ground")
        return None
    ground = db.get(ModerationGround, ground_id)
    if ground is None or not ground.active:
        raise ModerationError(_("Please choose a ground."), "ground")
    return ground


def _audit(db: Session, decision: ModerationDecision, ground: ModerationGround | None) -> None:
    """The platform's tamper-evident log, in this transaction (voting.platform_log, imported lazily)."""
    try:
        from voting.platform_log import append_moderation_decision
    except ImportError:  # pragma: no cover - the audit log package is not installed
        log.warning("no platform log: moderation decision %s not logged", decision.id)
        return
    append_moderation_decision(
        db,
        item=f"{decision.item_type}:{decision.item_id}",
        ground=ground.code if ground else "none",
        outcome=decision.action,
        moderator_id=decision.moderator_id or 0,
        decision_id=decision.id,  # type: ignore[arg-type]
    )


def decide(
    db: Session,
    *,
    settings: Settings,
    moderator: User,
    item_type: str,
    item_id: int,
    action: str,
    ground_id: int | None = None,
    statement: str = "",
    suspension_days: int | None = None,
    duplicate_of_id: int | None = None,
    title: str | None = None,
    theme_id: int | None = None,
    note: str = "",
) -> ModerationDecision:
    """Decide on an item: record the decision, apply its effect, resolve the open reports, notify the
    author with a statement of reasons, and append it to the audit log."""
    if not is_moderator(moderator):
        raise ModerationError(_("Only moderators can decide."))
    if item_type not in ACTIONS_FOR or action not in ACTIONS_FOR[item_type]:
        raise ModerationError(_("Please choose one of the options."), "action")
    item = _item_for_decision(db, item_type, item_id)
    if item.author_id is not None and item.author_id == moderator.id:
        raise ModerationError(_("You cannot moderate your own content."))
    if action == Action.BAN and not is_admin(moderator):
        raise ModerationError(_("Only administrators can ban accounts."), "action")
    restricting = action in RESTRICTING_ACTIONS
    ground = _ground(db, ground_id, required=restricting)
    statement = (statement or "").strip()
    if restricting and not statement:
        raise ModerationError(_("Please explain the decision to the author."), "statement")
    if len(statement) > MAX_STATEMENT or "\x00" in statement:
        raise ModerationError(_("Please use at most %(count)s characters.", count=MAX_STATEMENT), "statement")
    decision = ModerationDecision(
        item_type=item_type,
        item_id=item_id,
        action=action,
        ground_id=ground.id if ground else None,
        statement=statement,
        moderator_id=moderator.id,
        author_id=item.author_id,
    )
    _apply(
        db,
        settings=settings,
        moderator=moderator,
        item=item,
        decision=decision,
        suspension_days=suspension_days,
        duplicate_of_id=duplicate_of_id,
        title=title,
        theme_id=theme_id,
        note=note,
    )
    db.add(decision)
    db.flush()
    db.execute(
        update(Flag)
        .where(Flag.item_type == item_type, Flag.item_id == item_id, Flag.resolved_by_decision_id.is_(None))
        .values(resolved_by_decision_id=decision.id)
    )
    visibility_changed(db, item_type=item_type, item_id=item_id)
    _audit(db, decision, ground)
    if restricting and item.author_id is not None:
        _notify(db, settings=settings, decision=decision, ground=ground)
    _tell_reporters(db, settings=settings, decision=decision)
    log.info("decision %s %s on %s by %s", decision.id, action, item.key, moderator.id)
    return decision


def _item_for_decision(db: Session, item_type: str, item_id: int) -> Item:
    item = load_item(db, item_type=item_type, item_id=item_id)
    if item is None:
        raise ModerationError(_("This item no longer exists."))
    return item


def _apply(
    db: Session,
    *,
    settings: Settings,
    moderator: User,
    item: Item,
    decision: ModerationDecision,
    suspension_days: int | None,
    duplicate_of_id: int | None,
    title: str | None,
    theme_id: int | None,
    note: str,
) -> None:
    action = decision.action
    now = utcnow()
    if action in (Action.HIDE, Action.DUPLICATE) and is_hidden(db, item_type=item.type, item_id=item.id):
        if action == Action.HIDE:
            raise ModerationError(_("This item is already hidden."), "action")
    if action == Action.RESTORE:
        current = in_force(db, item_type=item.type, item_id=item.id)
        if not current:
            raise ModerationError(_("This item is not hidden."), "action")
        for old in current:
            old.superseded_at = now
    elif action == Action.EDIT:
        _edit(db, item=item, decision=decision, title=title, theme_id=theme_id, note=note)
    elif action == Action.DUPLICATE:
        target = db.get(Proposal, duplicate_of_id) if duplicate_of_id else None
        if target is None or target.id == item.id or is_hidden(db, item_type="proposal", item_id=target.id):
            raise ModerationError(_("Please choose another, visible proposal."), "duplicate_of")
        merge_duplicate(db, source=item.obj, target=target)  # type: ignore[arg-type]
        decision.duplicate_of_id = target.id
    elif action == Action.LOCK_COMMENTS:
        proposal: Proposal = item.obj  # type: ignore[assignment]
        if proposal.comments_locked_at is not None:
            raise ModerationError(_("Comments are already locked."), "action")
        # No proposals service locks comments, so the column is set here (the proposals package reads it).
        proposal.comments_locked_at = now
    elif action in (Action.SUSPEND, Action.BAN):
        days = BAN_DAYS if action == Action.BAN else suspension_days
        if days is None or not 1 <= days <= MAX_SUSPENSION_DAYS and action == Action.SUSPEND:
            raise ModerationError(
                _("Please enter a number of days from 1 to %(max)s.", max=MAX_SUSPENSION_DAYS), "days"
            )
        target = db.get(User, item.author_id) if item.author_id else None
        if target is None or target.is_deleted:
            raise ModerationError(_("This account no longer exists."))
        if is_admin(target) and not is_admin(moderator):
            raise ModerationError(_("Only administrators can suspend administrators."))
        try:
            accounts.suspend(db, actor=moderator, target=target, days=days)
        except accounts.AccountError as exc:
            raise ModerationError(str(exc)) from exc
        decision.suspension_until = target.suspended_until


def _edit(
    db: Session,
    *,
    item: Item,
    decision: ModerationDecision,
    title: str | None,
    theme_id: int | None,
    note: str,
) -> None:
    proposal: Proposal = item.obj  # type: ignore[assignment]
    note = (note or "").strip()
    if not note or len(note) > 500:
        raise ModerationError(_("Please write a visible note (at most 500 characters)."), "note")
    changed = False
    if title is not None and title.strip() and title.strip() != proposal.title:
        if len(title.strip()) > 140:
            raise ModerationError(_("Please use at most %(count)s characters.", count=140), "title")
        proposal.title = title.strip()
        changed = True
    if theme_id is not None and theme_id != proposal.theme_id:
        theme = db.get(Theme, theme_id)
        if theme is None or not theme.is_active:
            raise ModerationError(_("Please choose one of the options."), "theme")
        proposal.theme_id = theme_id
        changed = True
    if not changed:
        raise ModerationError(_("Please change the title or the theme area."), "title")
    proposal.updated_at = utcnow()
    decision.note = note


def merge_duplicate(db: Session, *, source: Proposal, target: Proposal) -> None:
    """Move supports and followers from ``source`` to ``target``; people who supported both count once."""
    now = utcnow()
    for model in (Support, Follow):
        table = model.__table__  # type: ignore[attr-defined]
        already = select(table.c.user_id).where(table.c.proposal_id == target.id)
        movers = select(
            literal(target.id).label("proposal_id"),
            table.c.user_id,
            literal(now, table.c.created_at.type).label("created_at"),
        ).where(table.c.proposal_id == source.id, table.c.user_id.not_in(already))
        db.execute(insert(table).from_select(["proposal_id", "user_id", "created_at"], movers))
        db.execute(delete(table).where(table.c.proposal_id == source.id))
    for proposal in (source, target):
        count = db.execute(
            select(func.count(Support.id)).where(Support.proposal_id == proposal.id)
        ).scalar_one()
        db.execute(update(Proposal).where(Proposal.id == proposal.id).values(support_count=count))
    db.refresh(source, attribute_names=["support_count"])
    db.refresh(target, attribute_names=["support_count"])


# --- notices (statement of reasons) ------------------------------------------------------------------------


@contextlib.contextmanager
def _locale(code: str) -> Iterator[None]:
    previous = i18n.get_locale()
    i18n.set_locale(code if code in i18n.LOCALES else "de")
    try:
        yield
    finally:
        i18n.set_locale(previous)


def _notify(
    db: Session, *, settings: Settings, decision: ModerationDecision, ground: ModerationGround | None
) -> None:
    """The statement of reasons: a notice in-app and an e-mail, in the author's language."""
    author = db.get(User, decision.author_id) if decision.author_id else None
    if author is None or author.is_deleted:
        return
    db.add(ModerationNotice(user_id=author.id, decision_id=decision.id))  # type: ignore[arg-type]
    if not author.email:
        return
    with _locale(author.locale):
        subject, body = compose_statement(
            decision=decision, ground=ground, locale=author.locale, settings=settings
        )
    send_mail(db, settings, to=author.email, subject=subject, body=body)


def _tell_reporters(db: Session, *, settings: Settings, decision: ModerationDecision) -> None:
    """Signed-in reporters learn the outcome of their report (never who decided or who the author is)."""
    reporters = db.execute(
        select(User)
        .join(Flag, Flag.reporter_id == User.id)
        .where(
            Flag.resolved_by_decision_id == decision.id, User.deleted_at.is_(None), User.email.is_not(None)
        )
    ).scalars()
    for reporter in reporters:
        with _locale(reporter.locale):
            outcome = (
                _("Our moderators reviewed the content and took no action.")
                if decision.action == Action.DISMISS
                else _(
                    "Our moderators reviewed the content and decided: %(action)s.",
                    action=action_labels()[decision.action],
                )
            )
            body = "\n".join(
                [
                    _("Thank you for your report."),
                    "",
                    outcome,
                    "",
                    _("Transparency report: %(url)s", url=settings.base_url.rstrip("/") + "/transparency"),
                ]
            )
            subject = _("Your report has been reviewed")
        send_mail(db, settings, to=reporter.email, subject=subject, body=body)  # type: ignore[arg-type]


def compose_statement(
    *, decision: ModerationDecision, ground: ModerationGround | None, locale: str, settings: Settings
) -> tuple[str, str]:
    labels = action_labels()
    types = item_type_labels()
    subject = _("Moderation decision: %(action)s", action=labels.get(decision.action, decision.action))
    lines = [
        _("Our moderators decided on your %(item)s.", item=types.get(decision.item_type, decision.item_type)),
        "",
        _("Decision: %(action)s", action=labels.get(decision.action, decision.action)),
        _("Ground: %(ground)s", ground=ground.title(locale) if ground else "—"),
    ]
    if decision.suspension_until is not None:
        lines.append(_("Suspended until: %(date)s", date=i18n.format_dt(decision.suspension_until)))
    lines += ["", _("Reasons:"), decision.statement, ""]
    base = settings.base_url.rstrip("/")
    if decision.appeal_of_id is None:
        lines.append(
            _(
                "You can appeal this decision once; another moderator will review it: %(url)s",
                url=f"{base}/moderation/decisions/{decision.id}/appeal",
            )
        )
    else:
        lines.append(_("This decision on your appeal is final."))
    lines.append(_("All notices: %(url)s", url=f"{base}/moderation/notices"))
    return subject, "\n".join(lines)


# --- appeals -----------------------------------------------------------------------------------------------


def can_appeal(db: Session, *, user: User | None, decision: ModerationDecision) -> bool:
    return (
        user is not None
        and decision.author_id == user.id
        and decision.action in RESTRICTING_ACTIONS
        and decision.appeal_of_id is None
        and db.execute(select(Appeal.id).where(Appeal.decision_id == decision.id)).first() is None
    )


def appeal(db: Session, *, user: User, decision_id: int, text: str) -> Appeal:
    decision = db.get(ModerationDecision, decision_id)
    if decision is None or decision.author_id != user.id:
        raise ModerationError(_("This decision cannot be appealed."))
    if not can_appeal(db, user=user, decision=decision):
        raise ModerationError(_("You have already appealed this decision, or it cannot be appealed."))
    text = (text or "").strip()
    if not text:
        raise ModerationError(_("Please explain why the decision is wrong."), "text")
    if len(text) > MAX_EXPLANATION or "\x00" in text:
        raise ModerationError(_("Please use at most %(count)s characters.", count=MAX_EXPLANATION), "text")
    row = Appeal(decision_id=decision.id, author_id=user.id, text=text)  # type: ignore[arg-type]
    try:
        with db.begin_nested():
            db.add(row)
    except IntegrityError as exc:  # a parallel appeal won
        raise ModerationError(
            _("You have already appealed this decision, or it cannot be appealed.")
        ) from exc
    return row


def can_decide_appeal(moderator: User | None, decision: ModerationDecision) -> bool:
    return (
        is_moderator(moderator)
        and moderator is not None
        and decision.moderator_id != moderator.id
        and decision.author_id != moderator.id
    )


def decide_appeal(
    db: Session,
    *,
    settings: Settings,
    moderator: User,
    appeal_id: int,
    outcome: str,
    statement: str,
) -> ModerationDecision:
    """Decide an appeal (final): ``reverse`` undoes the decision, ``confirm`` keeps it; by a different
    moderator than the one who decided."""
    row = db.get(Appeal, appeal_id)
    if row is None:
        raise ModerationError(_("This appeal does not exist."))
    if row.decided_by_decision_id is not None:
        raise ModerationError(_("This appeal has already been decided."))
    original = db.get(ModerationDecision, row.decision_id)
    assert original is not None
    if not can_decide_appeal(moderator, original):
        raise ModerationError(_("An appeal must be decided by a moderator other than the one who decided."))
    if outcome not in ("reverse", "confirm"):
        raise ModerationError(_("Please choose one of the options."), "outcome")
    statement = (statement or "").strip()
    if not statement:
        raise ModerationError(_("Please explain the decision to the author."), "statement")
    if len(statement) > MAX_STATEMENT or "\x00" in statement:
        raise ModerationError(_("Please use at most %(count)s characters.", count=MAX_STATEMENT), "statement")
    now = utcnow()
    decision = ModerationDecision(
        item_type=original.item_type,
        item_id=original.item_id,
        action=Action.RESTORE.value if outcome == "reverse" else Action.CONFIRM.value,
        ground_id=original.ground_id,
        statement=statement,
        moderator_id=moderator.id,
        author_id=original.author_id,
        appeal_of_id=original.id,
    )
    if outcome == "reverse":
        _reverse(db, original=original, moderator=moderator, now=now)
    db.add(decision)
    db.flush()
    row.decided_by_decision_id = decision.id
    visibility_changed(db, item_type=original.item_type, item_id=original.item_id)
    ground = db.get(ModerationGround, original.ground_id) if original.ground_id else None
    _audit(db, decision, ground)
    if original.author_id is not None:
        _notify(db, settings=settings, decision=decision, ground=ground)
    return decision


def _reverse(db: Session, *, original: ModerationDecision, moderator: User, now: dt.datetime) -> None:
    if original.action in IN_FORCE_ACTIONS:
        for old in in_force(db, item_type=original.item_type, item_id=original.item_id):
            old.superseded_at = now
    elif original.action == Action.LOCK_COMMENTS:
        proposal = db.get(Proposal, original.item_id)
        if proposal is not None:
            proposal.comments_locked_at = None
    elif original.action in (Action.SUSPEND, Action.BAN) and original.author_id:
        target = db.get(User, original.author_id)
        if target is not None and not target.is_deleted:
            accounts.suspend(db, actor=moderator, target=target, days=0)
    # warn: nothing to undo; edit: the moderator restores title or theme area by a new edit decision.


# --- notices for authors -----------------------------------------------------------------------------------


def notices_for(
    db: Session, *, user: User
) -> list[tuple[ModerationNotice, ModerationDecision, ModerationGround | None]]:
    rows = db.execute(
        select(ModerationNotice, ModerationDecision, ModerationGround)
        .join(ModerationDecision, ModerationDecision.id == ModerationNotice.decision_id)
        .outerjoin(ModerationGround, ModerationGround.id == ModerationDecision.ground_id)
        .where(ModerationNotice.user_id == user.id)
        .order_by(ModerationNotice.created_at.desc(), ModerationNotice.id.desc())
        .limit(200)
    ).all()
    return [(n, d, g) for n, d, g in rows]
