"""Who may vote in a process, and why not (stable codes with explanations for the resident).

Eligibility (documented decisions; checked when the ballot page opens and again when a ballot is cast):

- ``require_verified``: only verified residents (:func:`is_verified_resident`: ``resident_verified_at`` set
  by app/accounts/verification.py): sign-in through an identity-verified provider, a one-time letter code
  from the residents' register, or in person at a citizen office. A confirmed e-mail address is not enough.
- ``min_age``: the age on the day voting closes (Berlin time; the planned end while voting is open), from
  the verified birth date, or, when only the birth year is known (letter codes), counted conservatively as
  if the birthday were 31 December (:func:`verified_age`). Without a verified birth date or year the
  resident is asked to verify first ("age_unverified").
- ``eligible_district_ids``: the district in the voter's profile must be one of them (empty: all).
- District ballots: a resident votes in the city-wide ballot and in the ballot of their profile district,
  never in a second district's (checked against the voter's existing links).

Every refusal has a stable code and an explanation for the resident (:data:`ELIGIBILITY_MESSAGES`); codes
in :data:`VERIFY_CODES` come with a link to the verification page (/account/verify).
"""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session

from app.accounts import verification as account_verification
from app.database import utcnow
from app.i18n import BERLIN, format_day, lazy
from app.i18n import gettext as _
from app.models import User
from voting.lifecycle import Scope, eligible_districts, scopes
from voting.models import Process


def is_verified_resident(user: User) -> bool:
    """A resident whose residence was verified (identity-verified sign-in, letter code or in person)."""
    return user.resident_verified_at is not None


def verified_age(user: User, on: dt.datetime | dt.date) -> int | None:
    """The verified resident's age on the day ``on`` (Berlin time), or None without a verified birth date
    or year. With only a birth year the age is counted conservatively (birthday taken as 31 December)."""
    day = on.astimezone(BERLIN).date() if isinstance(on, dt.datetime) else on
    return account_verification.verified_age(user, day)


def close_date(process: Process) -> dt.date:
    """The day whose age counts: the day voting closed, or the planned end while it is open (Berlin)."""
    when = process.voting_closed_at or process.voting_ends_at or utcnow()
    return when.astimezone(BERLIN).date()


VERIFY_URL = "/account/verify"
VERIFY_CODES = frozenset({"not_verified", "age_unverified"})
ELIGIBILITY_MESSAGES = {
    "account": lazy("Your account cannot vote."),
    "not_verified": lazy(
        "This vote is open to verified residents only. You can verify your residence with the code from "
        "your letter, by signing in through an identity-verified service, or in person at a citizen office."
    ),
    "age_unverified": lazy(
        "This vote has a minimum age of %(age)s years on %(date)s, the day voting closes. Your age is not "
        "verified yet: please verify your residence with the code from your letter, by signing in through an "
        "identity-verified service, or in person at a citizen office."
    ),
    "too_young": lazy(
        "This vote has a minimum age of %(age)s years on %(date)s, the day voting closes. According to your "
        "verified date of birth you will not be old enough on that day."
    ),
    "too_young_year": lazy(
        "This vote has a minimum age of %(age)s years on %(date)s, the day voting closes. Only your year of "
        "birth is verified, so you count as old enough only if you would be even with a birthday on "
        "31 December. If you are old enough, please have your date of birth verified in person at a "
        "citizen office."
    ),
    "district_missing": lazy(
        "This vote is open to residents of certain districts. Please choose your district "
        "in your account first."
    ),
    "district_not_eligible": lazy("This vote is open to residents of other districts only."),
}


def eligibility_problems(process: Process, user: User | None) -> list[str]:
    """Why ``user`` may not vote in ``process`` (stable codes; empty: eligible)."""
    if user is None or user.is_deleted or user.is_suspended():
        return ["account"]
    problems = []
    if process.require_verified and not is_verified_resident(user):
        problems.append("not_verified")
    if process.min_age:
        age = verified_age(user, close_date(process))
        if age is None:
            problems.append("age_unverified")
        elif age < process.min_age:
            problems.append("too_young" if user.verified_birth_date is not None else "too_young_year")
    districts = eligible_districts(process)
    if districts:
        if user.district_id is None:
            problems.append("district_missing")
        elif user.district_id not in districts:
            problems.append("district_not_eligible")
    return problems


def eligibility_message(process: Process, code: str) -> str:
    return _(
        ELIGIBILITY_MESSAGES.get(code, ELIGIBILITY_MESSAGES["account"]),
        age=process.min_age or 0,
        date=format_day(close_date(process)),
    )


def needs_verification(codes: list[str]) -> bool:
    """Whether verifying one's residence would solve (part of) the refusal: show the verification link."""
    return any(code in VERIFY_CODES for code in codes)


def scope_allowed(process: Process, user: User, scope: int) -> bool:
    """The city-wide ballot, and the ballot of the voter's profile district when the process has them."""
    return scope == 0 or (
        process.has_district_ballots and user.district_id is not None and user.district_id == scope
    )


def voter_scopes(db: Session, process: Process, user: User | None) -> list[Scope]:
    """The ballots ``user`` fills in: the city-wide one and, if it exists, their district's."""
    if user is None:
        return [s for s in scopes(db, process) if s.id == 0]
    return [s for s in scopes(db, process) if scope_allowed(process, user, s.id)]
