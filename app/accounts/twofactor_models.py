"""Tables of the second factor: one TOTP credential per user and single-use recovery codes."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Column, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.database import UTCDateTime, utcnow


class TotpCredential(SQLModel, table=True):
    """A user's authenticator app. The secrets are encrypted at rest (Fernet, key derived from SECRET_KEY).

    ``secret`` is the active secret once ``confirmed_at`` is set; ``pending_secret`` is a secret being
    enrolled (shown as a QR code) that becomes active only when a code from it is confirmed, so replacing a
    device never leaves the account without a working factor. ``last_used_step`` is the last accepted time
    step (unix time // 30): a code of that step or an earlier one is never accepted again (ASVS V6.5.1)."""

    __tablename__ = "totp_credential"
    __table_args__ = (UniqueConstraint("user_id", name="uq_totp_credential_user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", ondelete="CASCADE")
    secret: str | None = Field(default=None, sa_column=Column(String(255), nullable=True))
    confirmed_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    last_used_step: int | None = Field(default=None, sa_column=Column(BigInteger(), nullable=True))
    pending_secret: str | None = Field(default=None, sa_column=Column(String(255), nullable=True))
    pending_created_at: dt.datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))

    @property
    def is_active(self) -> bool:
        return self.secret is not None and self.confirmed_at is not None


class RecoveryCode(SQLModel, table=True):
    """A one-time recovery code, stored as the SHA-256 of an 80-bit random code."""

    __tablename__ = "recovery_code"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", ondelete="CASCADE", index=True)
    code_hash: str = Field(sa_column=Column(String(64), nullable=False))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    used_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
