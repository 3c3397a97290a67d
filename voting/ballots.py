"""Casting a ballot: eligibility, the ballots a resident may fill in, one ballot per resident and ballot
(UNIQUE voter link + row lock), replacement until the vote closes, the receipt.

Secrecy: a ballot is stored and logged under a random ``ballot_uid``. The voter ↔ ballot link is a
``VoterLink`` row holding an HMAC of the user id under a per-process key derived from the app secret, so a
copy of the database without the secret does not reveal who voted how; the links are deleted for good once
the results are final (``lifecycle.destroy_links``).

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
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from app.accounts import verification as account_verification
from app.database import utcnow
from app.i18n import BERLIN, format_cents, format_day, lazy, ngettext
from app.i18n import gettext as _
from app.models import User
from voting import audit, receipts
from voting.lifecycle import (
    Scope,
    ballot_config,
    eligible_districts,
    get_scope,
    is_voting_open,
    lock,
    scopes,
)
from voting.merkle import canonical_json
from voting.models import Ballot, Process, VoterLink
from voting.selection import InvalidSelection, validate

# --- eligibility -----------------------------------------------------------------------------------------


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


# --- selections ------------------------------------------------------------------------------------------

SELECTION_MESSAGES = {
    "duplicate_project": lazy("A project was chosen more than once."),
    "unknown_project": lazy("One of the chosen projects is not on this ballot."),
    "empty": lazy("Please choose at least one project."),
    "over_budget": lazy("The chosen projects cost %(total)s, more than the budget of %(budget)s."),
    "too_many_points_for_project": lazy("Please give each project at most %(maximum)s points."),
    "too_many_points": lazy("Please distribute at most %(maximum)s points."),
}
UNREADABLE = lazy("The ballot could not be read. Please reload the page and try again.")


def selection_message(exc: InvalidSelection) -> str:
    """The broken rule of a selection, for the voter."""
    d = exc.details
    if exc.code == "too_few":
        n = int(d.get("minimum", 0))
        return ngettext(
            "Please choose at least %(num)s project.", "Please choose at least %(num)s projects.", n
        )
    if exc.code == "too_many":
        n = int(d.get("maximum", 0))
        return ngettext(
            "Please choose at most %(num)s project.", "Please choose at most %(num)s projects.", n
        )
    template = SELECTION_MESSAGES.get(exc.code)
    if template is None:
        return _(UNREADABLE)
    if exc.code == "over_budget":
        return _(template, total=format_cents(d["total"]), budget=format_cents(d["budget"]))
    return _(template, maximum=d.get("maximum", 0))


def selection_text(selection: list[int] | dict[str, int]) -> str:
    """The canonical JSON stored in ``Ballot.selection`` and logged."""
    return canonical_json(selection).decode("utf-8")


# --- casting ----------------------------------------------------------------------------------------------


class BallotError(Exception):
    """A ballot was refused. ``code``: closed, ineligible, scope, other_district, invalid (``selection``
    holds the InvalidSelection)."""

    def __init__(self, code: str, message: str, selection: InvalidSelection | None = None):
        super().__init__(message)
        self.code = code
        self.selection = selection


@dataclass
class CastResult:
    ballot: Ballot
    receipt: dict[str, Any]
    changed: bool  # False: the same selection again (nothing new logged)


def link_key(secret_key: str, process_id: int) -> bytes:
    """The per-process key of the voter links, derived from the app secret."""
    return hmac.new(
        secret_key.encode(), f"mitmachen voter link {process_id}".encode(), hashlib.sha256
    ).digest()


def voter_hash(secret_key: str, process_id: int, user_id: int) -> str:
    return hmac.new(link_key(secret_key, process_id), str(user_id).encode(), hashlib.sha256).hexdigest()


def new_ballot_uid() -> str:
    """128 random bits (ASVS V11.5.1)."""
    return secrets.token_hex(16)


def _link_upsert(dialect: str) -> Any:
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    table = VoterLink.__table__
    return (
        insert(table)
        .on_conflict_do_update(
            index_elements=["process_id", "scope", "voter_hash"], set_={"ballot_uid": table.c.ballot_uid}
        )
        .returning(table.c.ballot_uid)
    )


# Built once per dialect: the hot path of every cast (building and keying a statement costs more than
# running it on SQLite).
_LINK_UPSERT = {name: _link_upsert(name) for name in ("sqlite", "postgresql")}
_BALLOT_INSERT = insert(Ballot.__table__).returning(Ballot.__table__.c.id)
_BALLOT_OF_UID = select(Ballot).where(Ballot.ballot_uid == bindparam("uid"))


def _lock_link(db: Session, *, process_id: int, scope: int, hashed: str, new_uid: str) -> str:
    """The ballot id of the voter's link row for this ballot, the row created with ``new_uid`` if missing
    and locked until the transaction ends: two submissions of the same voter queue here (UNIQUE(process_id,
    scope, voter_hash); the upsert's conflict branch locks the row like FOR UPDATE). One statement."""
    params = {"process_id": process_id, "scope": scope, "voter_hash": hashed, "ballot_uid": new_uid}
    return db.execute(_LINK_UPSERT[db.get_bind().dialect.name], params).scalar_one()


def check_selection(
    db: Session, *, process: Process, scope: int, selection: Any
) -> list[int] | dict[str, int]:
    """The canonical selection, or BallotError("invalid") naming the broken rule."""
    sc = get_scope(db, process, scope)
    if sc is None:
        raise BallotError("scope", _("This ballot does not exist."))
    try:
        return validate(ballot_config(process, sc), selection)
    except InvalidSelection as exc:
        raise BallotError("invalid", selection_message(exc), exc) from exc


def cast_ballot(
    *,
    db: Session,
    secret_key: str,
    process: Process,
    voter: User,
    scope: int,
    selection: Any,
    now: dt.datetime | None = None,
) -> CastResult:
    """Cast or replace ``voter``'s ballot in ``scope``; the last version counts. Logs ``ballot.cast`` or
    ``ballot.replaced`` in the caller's transaction and returns the receipt. Re-submitting the current
    selection changes nothing (a double click logs nothing twice)."""
    process = lock(db, process, shared=True)  # a concurrent close waits for us, or we see it closed
    now = now or utcnow()
    if not is_voting_open(process, now):
        raise BallotError("closed", _("Voting is not open."))
    problems = eligibility_problems(process, voter)
    if problems:
        raise BallotError("ineligible", eligibility_message(process, problems[0]))
    if not scope_allowed(process, voter, scope):
        raise BallotError("scope", _("You cannot vote in this ballot."))
    canonical = check_selection(db, process=process, scope=scope, selection=selection)
    hashed = voter_hash(secret_key, process.id, voter.id)
    if scope != 0:
        other = select(VoterLink.id).where(
            VoterLink.process_id == process.id,
            VoterLink.voter_hash == hashed,
            VoterLink.scope.not_in([0, scope]),
        )
        if db.execute(other).first() is not None:
            raise BallotError(
                "other_district", _("You have already voted in the ballot of another district.")
            )
    new_uid = new_ballot_uid()
    ballot_uid = _lock_link(db, process_id=process.id, scope=scope, hashed=hashed, new_uid=new_uid)
    # A link made just now has no ballot yet (link and ballot are written in one transaction).
    fresh = ballot_uid == new_uid
    ballot = None if fresh else db.execute(_BALLOT_OF_UID, {"uid": ballot_uid}).scalar_one_or_none()
    text = selection_text(canonical)
    if ballot is not None and ballot.selection == text:
        return CastResult(ballot, receipt_for(db, process=process, ballot=ballot), changed=False)
    new_row: dict[str, Any] | None = None
    if ballot is None:
        new_row = dict(
            process_id=process.id,
            scope=scope,
            ballot_uid=ballot_uid,
            selection=text,
            version=1,
            is_paper=False,
            cast_at=now,
            updated_at=now,
        )
        ballot = Ballot(**new_row)
        entry_type = "ballot.cast"
    else:
        ballot.selection, ballot.version = text, ballot.version + 1
        entry_type = "ballot.replaced"
    ballot.updated_at = now
    appended = audit.append(
        db,
        log_id=audit.process_log(process.id),
        entry_type=entry_type,
        payload=ballot_payload(ballot, canonical),
        at=now,
    )
    ballot.log_index = appended.index
    if new_row is not None:
        # A Core INSERT: the ORM's flush of one new object costs several times the statement. The object
        # handed back stays outside the session (nothing reads it back in this unit of work).
        ballot.id = db.execute(_BALLOT_INSERT, {**new_row, "log_index": appended.index}).scalar_one()
    else:
        db.add(ballot)
        db.flush()
    from app import metrics  # imported here: the CLI's tally commands need no metrics

    metrics.ballot_cast(db, "cast" if entry_type == "ballot.cast" else "replaced")
    receipt = receipts.receipt_of_append(db, appended)
    receipt.update(process=process.id, paper=ballot.is_paper)
    return CastResult(ballot, receipt, changed=True)


def ballot_payload(ballot: Ballot, canonical: list[int] | dict[str, int]) -> dict[str, Any]:
    return {
        "ballot": ballot.ballot_uid,
        "scope": ballot.scope,
        "selection": canonical,
        "version": ballot.version,
        "paper": ballot.is_paper,
    }


def current_ballots(
    db: Session, *, secret_key: str, process: Process, voter: User | None
) -> dict[int, Ballot]:
    """The voter's current ballot per scope (through the links; nothing once they are destroyed)."""
    if voter is None or voter.id is None:
        return {}
    hashed = voter_hash(secret_key, process.id, voter.id)
    rows = db.execute(_CURRENT_BALLOTS, {"process_id": process.id, "hashed": hashed}).scalars()
    return {b.scope: b for b in rows}


# Built once: every receipt page runs it.
_CURRENT_BALLOTS = (
    select(Ballot)
    .join(VoterLink, VoterLink.ballot_uid == Ballot.ballot_uid)
    .where(
        VoterLink.process_id == bindparam("process_id"),
        VoterLink.voter_hash == bindparam("hashed"),
        Ballot.process_id == bindparam("process_id"),
    )
)


# --- receipts ---------------------------------------------------------------------------------------------


def receipt_for(db: Session, *, process: Process, ballot: Ballot) -> dict[str, Any]:
    """The receipt of the ballot's current version: ballot id, leaf index, entry hash and the signed tree
    head it is in (voting.receipts; signs a head if none covers the entry yet)."""
    data = receipts.receipt(db, log_id=audit.process_log(process.id), index=int(ballot.log_index or 0))
    data.update(process=process.id, paper=ballot.is_paper)
    return data


def receipt_head(receipt: dict[str, Any]) -> dict[str, Any]:
    """The tree head of a receipt as {size, root, timestamp?, signature?} whatever its source's shape."""
    head = receipt.get("head") or receipt.get("tree_head") or {}
    if not isinstance(head, dict):
        head = {}
    return {
        "size": head.get("size", head.get("tree_size", receipt.get("tree_size"))),
        "root": head.get("root", head.get("root_hash", receipt.get("root"))),
        "timestamp": head.get("timestamp"),
        "signature": head.get("signature"),
        "key_id": head.get("key_id"),
    }


def receipt_mail(*, process: Process, receipt: dict[str, Any], check_url: str) -> tuple[str, str]:
    """Subject and plain-text body of the receipt e-mail (no selection in it: the mail is not secret)."""
    head = receipt_head(receipt)
    subject = _("Your ballot receipt: %(title)s", title=process.title)
    lines = [
        _("Thank you for voting in “%(title)s”.", title=process.title),
        "",
        _("Keep this receipt to check that your ballot is in the public log:"),
        "",
        f"{_('Ballot ID')}: {receipt['ballot']}",
        f"{_('Version')}: {receipt['version']}",
        f"{_('Leaf index')}: {receipt['index']}",
        f"{_('Entry hash')}: {receipt['entry_hash']}",
        f"{_('Tree size')}: {head['size']}",
        f"{_('Root hash')}: {head['root']}",
        "",
        _("You can change your ballot until voting closes; only the last version counts."),
        check_url,
    ]
    return subject, "\n".join(lines)
