"""Moderation records: reports (flags), decisions with statements of reasons, appeals, notices to authors,
the configurable list of grounds and settings (pre-moderation per theme, word list).

Decisions are records, never flags on the content: an item is hidden while a ``hide`` or ``hold`` decision
for it is in force (``superseded_at IS NULL``); a later ``restore`` supersedes it. The visibility rule
(moderation/visibility.py) turns that into one SQL condition.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Column, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.database import UTCDateTime, utcnow


def _ts(nullable: bool = True):
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable))


class ItemType(enum.StrEnum):
    PROPOSAL = "proposal"
    COMMENT = "comment"
    ATTACHMENT = "attachment"
    PROFILE = "profile"


class Category(enum.StrEnum):
    ILLEGAL = "illegal"
    INSULT = "insult"
    SPAM = "spam"
    PERSONAL_DATA = "personal_data"
    OFF_TOPIC = "off_topic"
    DUPLICATE = "duplicate"
    OTHER = "other"


class Action(enum.StrEnum):
    DISMISS = "dismiss"
    HIDE = "hide"
    RESTORE = "restore"
    EDIT = "edit"
    DUPLICATE = "duplicate"
    LOCK_COMMENTS = "lock_comments"
    WARN = "warn"
    SUSPEND = "suspend"
    BAN = "ban"
    HOLD = "hold"  # pre-moderation: new content waits for review (made by the system, no moderator)
    CONFIRM = "confirm"  # an appeal decided against the author: the original decision stands


# Actions that keep an item out of every public listing while in force.
HIDING_ACTIONS = (Action.HIDE.value, Action.HOLD.value)
# Actions that restrict an author's content or account: the author gets a statement of reasons.
RESTRICTING_ACTIONS = (
    Action.HIDE.value,
    Action.EDIT.value,
    Action.DUPLICATE.value,
    Action.LOCK_COMMENTS.value,
    Action.WARN.value,
    Action.SUSPEND.value,
    Action.BAN.value,
)


class GroundKind(enum.StrEnum):
    COMMUNITY = "community-rule"
    LEGAL = "legal"


class ModerationGround(SQLModel, table=True):
    """A ground a decision rests on: a section of the community rules or a legal provision."""

    __tablename__ = "moderation_ground"
    __table_args__ = (UniqueConstraint("code", name="uq_moderation_ground_code"),)
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(sa_column=Column(String(64), nullable=False))
    title_de: str = Field(sa_column=Column(String(200), nullable=False))
    title_en: str = Field(sa_column=Column(String(200), nullable=False))
    kind: str = Field(default=GroundKind.COMMUNITY.value, sa_column=Column(String(16), nullable=False))
    active: bool = Field(default=True)
    position: int = Field(default=0)

    def title(self, locale: str) -> str:
        return self.title_en if locale == "en" else self.title_de


class ModerationDecision(SQLModel, table=True):
    __tablename__ = "moderation_decision"
    __table_args__ = (
        Index("ix_moderation_decision_item", "item_type", "item_id", "action", "superseded_at"),
        Index("ix_moderation_decision_created", "created_at"),
        Index("ix_moderation_decision_author", "author_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    item_type: str = Field(sa_column=Column(String(16), nullable=False))
    item_id: int
    action: str = Field(sa_column=Column(String(16), nullable=False))
    ground_id: int | None = Field(default=None, foreign_key="moderation_ground.id", ondelete="RESTRICT")
    statement: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    note: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    moderator_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    author_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    suspension_until: dt.datetime | None = _ts()
    duplicate_of_id: int | None = Field(default=None, foreign_key="proposal.id", ondelete="SET NULL")
    appeal_of_id: int | None = Field(default=None, foreign_key="moderation_decision.id", ondelete="SET NULL")
    superseded_at: dt.datetime | None = _ts()


class Flag(SQLModel, table=True):
    """One report. ``reporter_key`` is "u:<user id>" or "ip:<keyed hash>": the same person reporting the
    same item twice counts once (UNIQUE)."""

    __tablename__ = "moderation_flag"
    __table_args__ = (
        UniqueConstraint("item_type", "item_id", "reporter_key", name="uq_moderation_flag_reporter"),
        Index("ix_moderation_flag_open", "resolved_by_decision_id", "item_type", "item_id", "created_at"),
        Index("ix_moderation_flag_created", "created_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    reporter_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    reporter_key: str = Field(sa_column=Column(String(80), nullable=False))
    item_type: str = Field(sa_column=Column(String(16), nullable=False))
    item_id: int
    category: str = Field(sa_column=Column(String(24), nullable=False))
    explanation: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    resolved_by_decision_id: int | None = Field(
        default=None, foreign_key="moderation_decision.id", ondelete="SET NULL"
    )


class Appeal(SQLModel, table=True):
    """The author's internal complaint against one decision: once per decision (UNIQUE)."""

    __tablename__ = "moderation_appeal"
    __table_args__ = (UniqueConstraint("decision_id", name="uq_moderation_appeal_decision"),)
    id: int | None = Field(default=None, primary_key=True)
    decision_id: int = Field(foreign_key="moderation_decision.id", ondelete="CASCADE")
    author_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    text: str = Field(sa_column=Column(Text, nullable=False))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    decided_by_decision_id: int | None = Field(
        default=None, foreign_key="moderation_decision.id", ondelete="SET NULL"
    )


class ModerationNotice(SQLModel, table=True):
    """A statement of reasons delivered in-app to the affected author (rendered in their language)."""

    __tablename__ = "moderation_notice"
    __table_args__ = (Index("ix_moderation_notice_user", "user_id", "created_at"),)
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", ondelete="CASCADE")
    decision_id: int = Field(foreign_key="moderation_decision.id", ondelete="CASCADE")
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    read_at: dt.datetime | None = _ts()


class ModerationSetting(SQLModel, table=True):
    """Moderation configuration as data: ``premoderate_theme:<id>`` rows and the ``word_list``."""

    __tablename__ = "moderation_setting"
    __table_args__ = (UniqueConstraint("key", name="uq_moderation_setting_key"),)
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(sa_column=Column(String(64), nullable=False))
    value: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
