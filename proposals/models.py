"""Theme areas, districts (configuration data a city edits), proposals, comments, supports, follows,
attachments and notifications."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import BigInteger, CheckConstraint, Column, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.database import UTCDateTime, utcnow


class Theme(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("slug", name="uq_theme_slug"),)

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(sa_column=Column(String(64), nullable=False))
    name_de: str = Field(sa_column=Column(String(100), nullable=False))
    name_en: str = Field(sa_column=Column(String(100), nullable=False))
    description_de: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    description_en: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    position: int = Field(default=0)
    is_active: bool = Field(default=True)

    def name(self, locale: str) -> str:
        return self.name_en if locale == "en" and self.name_en else self.name_de

    def description(self, locale: str) -> str:
        return self.description_en if locale == "en" and self.description_en else self.description_de


class District(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("slug", name="uq_district_slug"),)

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(sa_column=Column(String(64), nullable=False))
    name: str = Field(sa_column=Column(String(100), nullable=False))
    position: int = Field(default=0)
    is_active: bool = Field(default=True)


# --- proposals ------------------------------------------------------------------------------------------


class ProposalStatus(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    UNDER_REVIEW = "under_review"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    IMPLEMENTED = "implemented"
    WITHDRAWN = "withdrawn"


# Which status may follow which (the lifecycle as data); who may make each step is a permission.
TRANSITIONS: dict[str, set[str]] = {
    ProposalStatus.DRAFT: {ProposalStatus.PUBLISHED},
    ProposalStatus.PUBLISHED: {ProposalStatus.UNDER_REVIEW, ProposalStatus.WITHDRAWN},
    ProposalStatus.UNDER_REVIEW: {ProposalStatus.ACCEPTED, ProposalStatus.REJECTED, ProposalStatus.WITHDRAWN},
    ProposalStatus.ACCEPTED: {ProposalStatus.IMPLEMENTED},
    ProposalStatus.REJECTED: set(),
    ProposalStatus.IMPLEMENTED: set(),
    ProposalStatus.WITHDRAWN: set(),
}
PUBLIC_STATUSES = (
    ProposalStatus.PUBLISHED,
    ProposalStatus.UNDER_REVIEW,
    ProposalStatus.ACCEPTED,
    ProposalStatus.REJECTED,
    ProposalStatus.IMPLEMENTED,
    ProposalStatus.WITHDRAWN,
)
OPEN_FOR_COMMENTS = (ProposalStatus.PUBLISHED, ProposalStatus.UNDER_REVIEW, ProposalStatus.ACCEPTED)


def _ts(nullable: bool = True, index: bool = False):
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class Proposal(SQLModel, table=True):
    """A resident's proposal. Its body is stored as Markdown and as sanitised HTML (sanitise on write)."""

    __table_args__ = (
        Index("ix_proposal_status_published", "status", "published_at"),
        Index("ix_proposal_theme_status_published", "theme_id", "status", "published_at"),
        Index("ix_proposal_district_status", "district_id", "status"),
        Index("ix_proposal_published_id", "published_at", "id"),
        Index("ix_proposal_support_count_id", "support_count", "id"),
        Index("ix_proposal_comment_count_id", "comment_count", "id"),
        Index("ix_proposal_author", "author_id"),
        CheckConstraint("support_count >= 0", name="support_count_nonneg"),
        CheckConstraint("comment_count >= 0", name="comment_count_nonneg"),
        CheckConstraint("cost_cents IS NULL OR cost_cents >= 0", name="cost_nonneg"),
    )

    id: int | None = Field(default=None, primary_key=True)
    author_id: int = Field(foreign_key="user.id")
    theme_id: int = Field(foreign_key="theme.id")
    district_id: int | None = Field(default=None, foreign_key="district.id", ondelete="SET NULL")
    title: str = Field(sa_column=Column(String(140), nullable=False))
    summary: str = Field(sa_column=Column(String(500), nullable=False))
    body_md: str = Field(sa_column=Column(Text, nullable=False))
    body_html: str = Field(sa_column=Column(Text, nullable=False))
    address: str = Field(default="", sa_column=Column(String(200), nullable=False, default=""))
    lat: float | None = Field(default=None)
    lon: float | None = Field(default=None)
    cost_cents: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    status: str = Field(default=ProposalStatus.DRAFT.value, sa_column=Column(String(16), nullable=False))
    status_reason: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    version: int = Field(default=1)
    support_count: int = Field(default=0)
    comment_count: int = Field(default=0)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    published_at: dt.datetime | None = _ts()
    review_requested_at: dt.datetime | None = _ts()
    decided_at: dt.datetime | None = _ts()
    implemented_at: dt.datetime | None = _ts()
    withdrawn_at: dt.datetime | None = _ts()
    comments_locked_at: dt.datetime | None = _ts()


class ProposalVersion(SQLModel, table=True):
    """The text of a proposal before an edit made after others engaged with it (visible history)."""

    __tablename__ = "proposal_version"
    __table_args__ = (UniqueConstraint("proposal_id", "version", name="uq_proposal_version"),)

    id: int | None = Field(default=None, primary_key=True)
    proposal_id: int = Field(foreign_key="proposal.id", ondelete="CASCADE")
    version: int
    title: str = Field(sa_column=Column(String(140), nullable=False))
    summary: str = Field(sa_column=Column(String(500), nullable=False))
    body_md: str = Field(sa_column=Column(Text, nullable=False))
    body_html: str = Field(sa_column=Column(Text, nullable=False))
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    replaced_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class ProposalStatusChange(SQLModel, table=True):
    """One step of a proposal's lifecycle, with who made it and the public reason."""

    __tablename__ = "proposal_status_change"
    __table_args__ = (Index("ix_proposal_status_change_proposal", "proposal_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    proposal_id: int = Field(foreign_key="proposal.id", ondelete="CASCADE")
    from_status: str = Field(sa_column=Column(String(16), nullable=False))
    to_status: str = Field(sa_column=Column(String(16), nullable=False))
    reason: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    actor_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class Support(SQLModel, table=True):
    """One resident's support of one proposal (UNIQUE: CVE-2023-47634)."""

    __table_args__ = (
        UniqueConstraint("proposal_id", "user_id", name="uq_support_proposal_user"),
        Index("ix_support_user", "user_id"),
        Index("ix_support_proposal_at", "proposal_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    proposal_id: int = Field(foreign_key="proposal.id", ondelete="CASCADE")
    user_id: int = Field(foreign_key="user.id", ondelete="CASCADE")
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class Follow(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("proposal_id", "user_id", name="uq_follow_proposal_user"),
        Index("ix_follow_user", "user_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    proposal_id: int = Field(foreign_key="proposal.id", ondelete="CASCADE")
    user_id: int = Field(foreign_key="user.id", ondelete="CASCADE")
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class Attachment(SQLModel, table=True):
    """A file stored outside the web root under a name we generate; served as a download."""

    __table_args__ = (UniqueConstraint("storage_name", name="uq_attachment_storage_name"),)

    id: int | None = Field(default=None, primary_key=True)
    proposal_id: int = Field(foreign_key="proposal.id", ondelete="CASCADE", index=True)
    uploader_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    storage_name: str = Field(sa_column=Column(String(64), nullable=False))
    original_name: str = Field(sa_column=Column(String(200), nullable=False))
    content_type: str = Field(sa_column=Column(String(40), nullable=False))
    size: int
    sha256: str = Field(sa_column=Column(String(64), nullable=False))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


# --- comments ---------------------------------------------------------------------------------------------


class Comment(SQLModel, table=True):
    """A comment or reply. Deleting keeps the row (shown as "deleted") so the thread stays intact."""

    __table_args__ = (
        Index("ix_comment_proposal_created", "proposal_id", "created_at"),
        Index("ix_comment_parent", "parent_id"),
        Index("ix_comment_author", "author_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    proposal_id: int = Field(foreign_key="proposal.id", ondelete="CASCADE")
    author_id: int = Field(foreign_key="user.id")
    parent_id: int | None = Field(default=None, foreign_key="comment.id", ondelete="CASCADE")
    depth: int = Field(default=0)
    body_md: str = Field(sa_column=Column(Text, nullable=False))
    body_html: str = Field(sa_column=Column(Text, nullable=False))
    score: int = Field(default=0)
    upvotes: int = Field(default=0)
    downvotes: int = Field(default=0)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    edited_at: dt.datetime | None = _ts()
    deleted_at: dt.datetime | None = _ts()


class CommentVote(SQLModel, table=True):
    __tablename__ = "comment_vote"
    __table_args__ = (
        UniqueConstraint("comment_id", "user_id", name="uq_comment_vote_comment_user"),
        CheckConstraint("value IN (-1, 1)", name="value_pm1"),
    )

    id: int | None = Field(default=None, primary_key=True)
    comment_id: int = Field(foreign_key="comment.id", ondelete="CASCADE")
    user_id: int = Field(foreign_key="user.id", ondelete="CASCADE")
    value: int


# --- notifications ----------------------------------------------------------------------------------------


class NotificationKind(enum.StrEnum):
    COMMENT = "comment"  # a new comment on a followed proposal
    REPLY = "reply"  # a reply to one's comment
    STATUS = "status"  # a status change of a followed proposal
    REVIEW = "review"  # staff: a proposal reached the support threshold


class Notification(SQLModel, table=True):
    __table_args__ = (Index("ix_notification_user_read", "user_id", "read_at", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", ondelete="CASCADE")
    kind: str = Field(sa_column=Column(String(16), nullable=False))
    proposal_id: int | None = Field(default=None, foreign_key="proposal.id", ondelete="CASCADE")
    comment_id: int | None = Field(default=None, foreign_key="comment.id", ondelete="CASCADE")
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    read_at: dt.datetime | None = _ts()
    emailed_at: dt.datetime | None = _ts()


class NotificationSetting(SQLModel, table=True):
    """Opt-in per notification kind: shown in the app and/or included in the e-mail digest."""

    __tablename__ = "notification_setting"
    __table_args__ = (UniqueConstraint("user_id", "kind", name="uq_notification_setting_user_kind"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", ondelete="CASCADE")
    kind: str = Field(sa_column=Column(String(16), nullable=False))
    in_app: bool = Field(default=True)
    email: bool = Field(default=False)
