"""Accounts' OpenID Connect identities: one row per (issuer, subject) linked to an account.

The identity of a person at a provider is the pair (issuer, ``sub``), never the e-mail address (ASVS V6.8.1):
an e-mail address can change at the provider or be reassigned, the subject of an issuer cannot.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.database import UTCDateTime, utcnow


class OidcIdentity(SQLModel, table=True):
    """An account's sign-in through one subject of one OpenID provider."""

    __tablename__ = "oidc_identity"
    __table_args__ = (
        UniqueConstraint("issuer", "subject", name="uq_oidc_identity_issuer_subject"),
        Index("ix_oidc_identity_user_id", "user_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", ondelete="CASCADE")
    # the provider's key in OIDC_PROVIDERS when the identity was linked (for display and unlinking)
    provider: str = Field(sa_column=Column(String(32), nullable=False))
    issuer: str = Field(sa_column=Column(String(255), nullable=False))
    subject: str = Field(sa_column=Column(String(255), nullable=False))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    last_login_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
