"""Eligible-residents registers and their one-time letter codes (services: voting/verification.py).

A register is an extract of the residents' register that staff upload (reference, postal code, birth
year), or a batch of N codes without register data. Each entry has one letter code; only a keyed hash of
the code is stored (``code_hash``), and the printable code is re-derived from the register's random
``code_seed`` until staff delete the printing data (or the register is closed). The plain reference is
kept only while letters are printed; the keyed ``reference_hash`` lets staff find an entry at the citizen
office. On closing, personal data is kept only hashed or deleted, as the register's ``retention`` says.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Column, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.database import UTCDateTime, utcnow


class Retention(enum.StrEnum):
    HASH = "hash"  # after closing: reference only as keyed hash; postal code and birth year kept
    DELETE = "delete"  # after closing: reference, its hash, postal code and birth year removed


class ResidentRegister(SQLModel, table=True):
    """An uploaded register extract (``has_data``) or a batch of generated codes."""

    __tablename__ = "resident_register"

    id: int | None = Field(default=None, primary_key=True)
    process_id: int | None = Field(default=None, foreign_key="process.id", ondelete="SET NULL")
    name: str = Field(sa_column=Column(String(200), nullable=False))
    retention: str = Field(default=Retention.HASH.value, sa_column=Column(String(8), nullable=False))
    has_data: bool = Field(default=True)
    # random secret the printable codes are derived from; None once the printing data is deleted
    code_seed: bytes | None = Field(default=None, sa_column=Column(LargeBinary(32), nullable=True))
    created_by: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    printing_data_deleted_at: dt.datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    closed_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))

    @property
    def is_closed(self) -> bool:
        return self.closed_at is not None

    @property
    def can_print(self) -> bool:
        return self.code_seed is not None and self.closed_at is None


class RegisterEntry(SQLModel, table=True):
    """One resident of a register (or one generated code) with its letter code's hash."""

    __tablename__ = "register_entry"
    __table_args__ = (
        UniqueConstraint("code_hash", name="uq_register_entry_code_hash"),
        UniqueConstraint("register_id", "used_by_user_id", name="uq_register_entry_register_user"),
        Index("ix_register_entry_reference_hash", "reference_hash"),
        Index("ix_register_entry_register_id", "register_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    register_id: int = Field(foreign_key="resident_register.id", ondelete="CASCADE")
    position: int = Field(sa_column=Column(Integer, nullable=False))  # row number; the code derives from it
    reference: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    reference_hash: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    postal_code: str | None = Field(default=None, sa_column=Column(String(10), nullable=True))
    birth_year: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    code_hash: str = Field(sa_column=Column(String(64), nullable=False))
    used_by_user_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    used_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    verified_by: int | None = Field(
        default=None, sa_column=Column(Integer, nullable=True)
    )  # staff, in person

    @property
    def is_used(self) -> bool:
        return self.used_at is not None
