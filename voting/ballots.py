"""Casting a ballot: eligibility, the ballots a resident may fill in, one ballot per resident and ballot
(UNIQUE voter link + row lock), replacement until the vote closes, the receipt.

Secrecy: a ballot is stored and logged under a random ``ballot_uid``. The voter ↔ ballot link is a
``VoterLink`` row holding an HMAC of the user id under a per-process key derived from the app secret, so a
copy of the database without the secret does not reveal who voted how; the links are deleted for good once
the results are final (``lifecycle.destroy_links``).

Who may vote: voting/eligibility.py.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from app.database import utcnow
from app.i18n import format_cents, lazy, ngettext
from app.i18n import gettext as _
from app.models import User
from voting import audit, heads, receipts
from voting.eligibility import (  # noqa: F401 (re-exported: the routes and tests use ballots.*)
    ELIGIBILITY_MESSAGES,
    VERIFY_CODES,
    VERIFY_URL,
    close_date,
    eligibility_message,
    eligibility_problems,
    is_verified_resident,
    needs_verification,
    scope_allowed,
    verified_age,
    voter_scopes,
)
from voting.lifecycle import (
    ballot_config,
    get_scope,
    is_voting_open,
    lock,
)
from voting.merkle import canonical_json
from voting.models import Ballot, LogEntry, Process, SignedTreeHead, VoterLink
from voting.receipts import receipt_head, receipt_mail  # noqa: F401 (re-exported: ballots.receipt_*)
from voting.selection import InvalidSelection, validate

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


@functools.lru_cache(maxsize=256)
def link_key(secret_key: str, process_id: int) -> bytes:
    """The per-process key of the voter links, derived from the app secret (kept per worker: every cast and
    every receipt needs it)."""
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
    head: dict[str, Any] = {}

    def rows(appended: audit.Appended) -> list[audit.Write]:
        # Written with the entry (one statement on PostgreSQL): a new ballot's row (the object handed back
        # stays outside the session, nothing reads it back in this unit of work) and the head of the log
        # right after it, which the receipt names (no head can cover an entry that is not committed yet).
        head.update(heads.head_values(appended, reason="receipt"))
        ballot_row = (
            [] if new_row is None else [audit.Write("ballot", {**new_row, "log_index": appended.index})]
        )
        return [*ballot_row, audit.Write("signed_tree_head", head)]

    appended = audit.append(
        db,
        log_id=audit.process_log(process.id),
        entry_type=entry_type,
        payload=ballot_payload(ballot, canonical),
        at=now,
        writes=rows,
    )
    ballot.log_index = appended.index
    if new_row is None:
        db.add(ballot)
        db.flush()
    from app import metrics  # imported here: the CLI's tally commands need no metrics

    metrics.ballot_cast(db, "cast" if entry_type == "ballot.cast" else "replaced")
    receipt = receipts.receipt_of(
        log_id=appended.log_id,
        index=appended.index,
        entry=appended.entry,
        leaf=appended.leaf_hash,
        head=heads.Head(**head),
    )
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


def current_receipt(
    db: Session, *, secret_key: str, process: Process, voter: User, scope: int
) -> dict[str, Any] | None:
    """The receipt of the voter's current ballot in ``scope`` (None without one), as ``receipt_for`` makes
    it: the voter's link, the ballot, its log entry and the newest signed head in one statement. Only when
    no head covers the entry yet does it take ``receipt_for``'s way (which signs one)."""
    if voter.id is None:
        return None
    log_id = audit.process_log(process.id)
    params = {
        "process_id": process.id,
        "hashed": voter_hash(secret_key, process.id, voter.id),
        "scope": scope,
        "log_id": log_id,
    }
    row = db.execute(_CURRENT_RECEIPT, params).one_or_none()
    if row is None:
        return None
    index = int(row.log_index or 0)
    if row.size is None or int(row.size) <= index:
        ballot = db.execute(_BALLOT_OF_UID, {"uid": row.ballot_uid}).scalar_one()
        return receipt_for(db, process=process, ballot=ballot)
    head = heads.Head(**{name: getattr(row, name) for name in _HEAD_FIELDS})
    data = receipts.receipt_of(
        log_id=log_id, index=index, entry=bytes(row.entry), leaf=bytes(row.leaf_hash), head=head
    )
    data.update(process=process.id, paper=bool(row.is_paper))
    return data


_HEAD_FIELDS = ("log_id", "size", "root", "timestamp", "signature", "key_id", "reason")


def _current_receipt_statement() -> Any:
    ballot, link = Ballot.__table__.c, VoterLink.__table__.c
    entry, head = LogEntry.__table__.c, SignedTreeHead.__table__.c
    newest = (
        select(head.id)
        .where(head.log_id == bindparam("log_id"))
        .order_by(head.size.desc(), head.timestamp.desc(), head.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return (
        select(
            ballot.ballot_uid,
            ballot.is_paper,
            ballot.log_index,
            entry.entry,
            entry.leaf_hash,
            *(head[name] for name in _HEAD_FIELDS),
        )
        .select_from(
            VoterLink.__table__.join(
                Ballot.__table__,
                (ballot.ballot_uid == link.ballot_uid) & (ballot.process_id == link.process_id),
            )
            .join(LogEntry.__table__, (entry.log_id == bindparam("log_id")) & (entry.idx == ballot.log_index))
            .outerjoin(SignedTreeHead.__table__, head.id == newest)
        )
        .where(
            link.process_id == bindparam("process_id"),
            link.voter_hash == bindparam("hashed"),
            link.scope == bindparam("scope"),
        )
    )


# Built once: the page after every cast runs it.
_CURRENT_RECEIPT = _current_receipt_statement()


def receipt_for(db: Session, *, process: Process, ballot: Ballot) -> dict[str, Any]:
    """The receipt of the ballot's current version: ballot id, leaf index, entry hash and the signed tree
    head it is in (voting.receipts; signs a head if none covers the entry yet)."""
    data = receipts.receipt(db, log_id=audit.process_log(process.id), index=int(ballot.log_index or 0))
    data.update(process=process.id, paper=ballot.is_paper)
    return data
