"""Resident verification: an account is vouched for as belonging to a resident, with the attributes the
verification gave (birth date or year, postal code).

Three ways lead here (each calls ``mark_verified``):

- sign-in through an OpenID Connect provider marked as identity-verified whose claims give the birth date
  and postal code (method ``"oidc:<provider key>"``);
- a one-time letter code from the eligible-residents register (method ``"letter"``, voting/verification.py);
- in-person verification by staff at a citizen office (method ``"in_person"``, with the staff member's id).

Only the attributes stored here count for eligibility rules (minimum age, districts); what a person types
into their profile does not. Every verification is also written to the append-only
``resident_verification`` table (who, how, when, which staff member) for accountability.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import Column, Index, Integer, String
from sqlmodel import Field, Session, SQLModel

from app.database import UTCDateTime, utcnow
from app.models import User

log = logging.getLogger("mitmachen.verification")

METHOD_LETTER = "letter"
METHOD_IN_PERSON = "in_person"
METHOD_OIDC_PREFIX = "oidc:"
POSTAL_CODE_MAX = 10


class ResidentVerification(SQLModel, table=True):
    """One verification event (append-only): the account, the method, when, and who (staff, in person).

    The attributes themselves live on the account; this row records that and how they were established."""

    __tablename__ = "resident_verification"
    __table_args__ = (Index("ix_resident_verification_user_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    method: str = Field(sa_column=Column(String(40), nullable=False))
    verified_by: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    # a keyed hash of the register reference (letter code or in-person check), never the reference itself
    reference_hash: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))


def _valid_method(method: str) -> bool:
    if method in (METHOD_LETTER, METHOD_IN_PERSON):
        return True
    return (
        method.startswith(METHOD_OIDC_PREFIX) and len(method) > len(METHOD_OIDC_PREFIX) and len(method) <= 40
    )


def normalise_postal_code(value: str | None) -> str | None:
    """German postal codes are five digits; other values are kept trimmed (up to 10 characters)."""
    if value is None:
        return None
    value = "".join(str(value).split())
    return value[:POSTAL_CODE_MAX] or None


def mark_verified(
    db: Session,
    user: User,
    *,
    method: str,
    birth_date: dt.date | None = None,
    birth_year: int | None = None,
    postal_code: str | None = None,
    reference_hash: str | None = None,
    verified_by: int | None = None,
) -> None:
    """Record that ``user`` is a verified resident, with the attributes this verification vouches for.

    A later verification replaces the attributes (e.g. after a move, the new postal code counts); attributes
    the new verification does not give are kept when they do not contradict it (no birth year given: the
    verified birth date/year stay; a birth year equal to the verified birth date's year keeps the date).
    Writes one ``resident_verification`` event row. The caller commits.
    """
    if not _valid_method(method):
        raise ValueError(f"unknown verification method {method!r}")
    if user.id is None:
        raise ValueError("user must be saved before it can be verified")
    if birth_date is not None:
        if birth_year is not None and birth_year != birth_date.year:
            raise ValueError("birth_year contradicts birth_date")
        birth_year = birth_date.year
    now = utcnow()
    if birth_year is not None and not (1900 <= birth_year <= now.year):
        raise ValueError("implausible birth year")
    if birth_year is not None:
        # a birth year that agrees with an already verified birth date keeps the (more precise) date
        current = user.verified_birth_date
        if birth_date is not None or current is None or current.year != birth_year:
            user.verified_birth_date = birth_date
        user.verified_birth_year = birth_year
    postal_code = normalise_postal_code(postal_code)
    if postal_code is not None:
        user.verified_postal_code = postal_code
    user.resident_verified_at = now
    user.resident_verification_method = method
    db.add(user)
    db.add(
        ResidentVerification(
            user_id=user.id, method=method, verified_by=verified_by, at=now, reference_hash=reference_hash
        )
    )
    db.flush()
    log.info("resident verified: user=%s method=%s staff=%s", user.id, method, verified_by or "-")


def clear_verification(user: User) -> None:
    """Forget the verified attributes (account deletion); the event rows keep only ids and the method."""
    user.resident_verified_at = None
    user.resident_verification_method = None
    user.verified_birth_date = None
    user.verified_birth_year = None
    user.verified_postal_code = None


def verified_age(user: User, on: dt.date) -> int | None:
    """The verified resident's age in whole years on ``on``, or None when no birth date/year is verified.

    With an exact birth date the age is exact (a person born 2010-03-02 is 16 on 2026-03-02, 15 the day
    before). With only a birth year (letter codes from the register) the age is counted conservatively, as if
    the birthday were 31 December: the person is old enough only if they are old enough even then, so nobody
    too young is ever let through (someone born in 2010 counts as 16 only from 31 Dec 2026)."""
    if user.resident_verified_at is None:
        return None
    birth = user.verified_birth_date
    if birth is None and user.verified_birth_year is not None:
        birth = dt.date(user.verified_birth_year, 12, 31)
    if birth is None:
        return None
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
