"""Core tables: accounts, server-side sessions, rate-limit events, spent single-use tokens and configurable
pages."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Column, Date, Index, Integer, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.database import UTCDateTime, utcnow


class Role(enum.StrEnum):
    RESIDENT = "resident"
    MODERATOR = "moderator"
    STAFF = "staff"
    ADMIN = "admin"


def _ts(nullable: bool = True, index: bool = False):
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class User(SQLModel, table=True):
    """A person's account. Deleted accounts are anonymised, not removed, so content keeps its author row."""

    id: int | None = Field(default=None, primary_key=True)
    email: str | None = Field(default=None, sa_column=Column(String(254), unique=True, nullable=True))
    password_hash: str | None = Field(default=None, sa_column=Column(String(255), nullable=True))
    display_name: str = Field(sa_column=Column(String(80), nullable=False))
    role: str = Field(default=Role.RESIDENT.value, sa_column=Column(String(16), nullable=False))
    locale: str = Field(default="de", sa_column=Column(String(5), nullable=False))
    district_id: int | None = Field(default=None, foreign_key="district.id", ondelete="SET NULL")
    # consent to show the display name in open data (API, exports); otherwise anonymous there
    is_name_public: bool = Field(default=False)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    email_confirmed_at: dt.datetime | None = _ts()
    password_changed_at: dt.datetime | None = _ts()
    suspended_until: dt.datetime | None = _ts()
    deleted_at: dt.datetime | None = _ts()
    # resident verification (app/accounts/verification.py): when, how ("oidc:<key>", "letter", "in_person"),
    # and the attributes the verification vouched for (only these count for eligibility rules)
    resident_verified_at: dt.datetime | None = _ts()
    resident_verification_method: str | None = Field(
        default=None, sa_column=Column(String(40), nullable=True)
    )
    verified_birth_date: dt.date | None = Field(default=None, sa_column=Column(Date, nullable=True))
    verified_birth_year: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    verified_postal_code: str | None = Field(default=None, sa_column=Column(String(10), nullable=True))

    @property
    def is_confirmed(self) -> bool:
        return self.email_confirmed_at is not None

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    def is_suspended(self, now: dt.datetime | None = None) -> bool:
        return self.suspended_until is not None and self.suspended_until > (now or utcnow())


class UserSession(SQLModel, table=True):
    """Server-side record behind the signed session cookie, so a session can be revoked."""

    __tablename__ = "user_session"
    __table_args__ = (Index("ix_user_session_user_active", "user_id", "revoked_at"),)

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    user_id: int = Field(foreign_key="user.id", ondelete="CASCADE")
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    last_seen_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    revoked_at: dt.datetime | None = _ts()
    revoked_reason: str | None = Field(default=None, sa_column=Column(String(32), nullable=True))
    user_agent: str = Field(default="", sa_column=Column(String(200), nullable=False, default=""))


class RateLimitEvent(SQLModel, table=True):
    """One counted attempt under a rate-limit key (e.g. "login:ip:1.2.3.4")."""

    __tablename__ = "rate_limit_event"
    __table_args__ = (Index("ix_rate_limit_event_key_at", "key", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(sa_column=Column(String(200), nullable=False))
    at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class UsedToken(SQLModel, table=True):
    """A single-use token that was spent (app/usedtokens.py): only the SHA-256 digest, never the token,
    kept until ``expires_at`` (after the token's own lifetime), when it could no longer be used anyway."""

    __tablename__ = "used_token"
    __table_args__ = (
        UniqueConstraint("purpose", "digest", name="uq_used_token_purpose_digest"),
        Index("ix_used_token_expires_at", "expires_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    purpose: str = Field(sa_column=Column(String(40), nullable=False))
    digest: str = Field(sa_column=Column(String(64), nullable=False))
    used_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class Page(SQLModel, table=True):
    """An editable page such as the imprint, the privacy notice or the community rules (Markdown)."""

    __table_args__ = (UniqueConstraint("slug", name="uq_page_slug"),)

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(sa_column=Column(String(64), nullable=False))
    title_de: str = Field(sa_column=Column(String(140), nullable=False))
    title_en: str = Field(sa_column=Column(String(140), nullable=False))
    body_de: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    body_en: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    in_footer: bool = Field(default=True)
    position: int = Field(default=0)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))

    def title(self, locale: str) -> str:
        return self.title_en if locale == "en" and self.title_en else self.title_de

    def body(self, locale: str) -> str:
        return self.body_en if locale == "en" and self.body_en else self.body_de
