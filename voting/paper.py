"""Paper ballots from polling stations: entered by one staff member, confirmed by a second one.

Only a confirmed entry becomes a ballot: it is cast under a fresh random ``ballot_uid``, marked
``is_paper`` and logged as ``ballot.cast`` with ``"paper": true`` exactly like an online ballot, so offline
residents count the same. A wrong entry is rejected (by either person) and entered again. The person who
entered a paper ballot can never confirm it (four eyes, enforced here and by ``voting.paper.confirm``).
The paper's serial number (``reference``) can be entered only once per process (rejected entries aside).

Paper ballots are entered while voting is open: staff close the vote after the last polling station has
been entered (the log never holds a ballot after ``process.closed``). Checking that a resident who voted on
paper did not also vote online is the polling station's register, not this module.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from app.database import utcnow
from app.i18n import gettext as _
from app.models import User
from voting import audit
from voting.ballots import BallotError, ballot_payload, check_selection, new_ballot_uid, selection_text
from voting.lifecycle import is_voting_open, lock
from voting.models import Ballot, PaperBallot, Process


class PaperError(Exception):
    """``code``: closed, invalid, duplicate, same_person, done, not_found; ``field`` for the form."""

    def __init__(self, code: str, message: str, field: str = "__all__"):
        super().__init__(message)
        self.code = code
        self.field = field


def _selection(db: Session, process: Process, scope: int, selection: Any) -> list[int] | dict[str, int]:
    try:
        return check_selection(db, process=process, scope=scope, selection=selection)
    except BallotError as exc:
        raise PaperError("invalid", str(exc), "selection" if exc.code == "invalid" else "scope") from exc


def enter_paper(
    db: Session,
    *,
    process: Process,
    staff: User,
    scope: int,
    polling_station: str,
    reference: str,
    selection: Any,
    now: dt.datetime | None = None,
) -> PaperBallot:
    """Record a paper ballot as entered by ``staff``; it waits for a second person's confirmation."""
    process = lock(db, process)  # serialises entries: a serial number cannot slip in twice
    now = now or utcnow()
    if not is_voting_open(process, now):
        raise PaperError("closed", _("Paper ballots can be entered while voting is open."))
    canonical = _selection(db, process, scope, selection)
    duplicate = select(PaperBallot.id).where(
        PaperBallot.process_id == process.id,
        PaperBallot.reference == reference,
        PaperBallot.rejected_at.is_(None),
    )
    if db.execute(duplicate).first() is not None:
        raise PaperError(
            "duplicate", _("A paper ballot with this number has already been entered."), "reference"
        )
    paper = PaperBallot(
        process_id=process.id,
        scope=scope,
        polling_station=polling_station,
        reference=reference,
        selection=selection_text(canonical),
        entered_by_id=staff.id,
        entered_at=now,
    )
    db.add(paper)
    db.flush()
    return paper


def _lock_paper(db: Session, process: Process, paper_id: int) -> PaperBallot:
    stmt = select(PaperBallot).where(PaperBallot.id == paper_id, PaperBallot.process_id == process.id)
    paper = db.execute(stmt.with_for_update().execution_options(populate_existing=True)).scalar_one_or_none()
    if paper is None:
        raise PaperError("not_found", _("This paper ballot does not exist."))
    if paper.confirmed_at is not None or paper.rejected_at is not None:
        raise PaperError("done", _("This paper ballot has already been confirmed or rejected."))
    return paper


def confirm_paper(
    db: Session, *, process: Process, staff: User, paper_id: int, now: dt.datetime | None = None
) -> Ballot:
    """A second staff member confirms the entry: it is cast as a paper ballot and logged."""
    process = lock(db, process, shared=True)
    now = now or utcnow()
    if not is_voting_open(process, now):
        raise PaperError("closed", _("Paper ballots can be confirmed while voting is open."))
    paper = _lock_paper(db, process, paper_id)
    if paper.entered_by_id == staff.id:
        raise PaperError("same_person", _("A paper ballot must be confirmed by a second person."))
    canonical = _selection(db, process, paper.scope, json.loads(paper.selection))
    ballot = Ballot(
        process_id=process.id,
        scope=paper.scope,
        ballot_uid=new_ballot_uid(),
        selection=selection_text(canonical),
        is_paper=True,
        cast_at=now,
        updated_at=now,
    )
    appended = audit.append(
        db,
        log_id=audit.process_log(process.id),
        entry_type="ballot.cast",
        payload=ballot_payload(ballot, canonical),
        at=now,
    )
    ballot.log_index = appended.index
    paper.confirmed_by_id, paper.confirmed_at, paper.ballot_uid = staff.id, now, ballot.ballot_uid
    db.add_all([ballot, paper])
    db.flush()
    return ballot


def reject_paper(
    db: Session, *, process: Process, staff: User, paper_id: int, now: dt.datetime | None = None
) -> PaperBallot:
    """Reject a wrong entry (it is never counted; the paper can be entered again)."""
    process = lock(db, process, shared=True)
    now = now or utcnow()
    if not is_voting_open(process, now):
        raise PaperError("closed", _("Paper ballots can be rejected while voting is open."))
    paper = _lock_paper(db, process, paper_id)
    paper.rejected_at = now
    db.add(paper)
    db.flush()
    return paper


def papers(db: Session, *, process: Process, limit: int = 200) -> list[PaperBallot]:
    """Pending entries first (oldest first), then the latest confirmed or rejected ones."""
    pending = select(PaperBallot).where(
        PaperBallot.process_id == process.id,
        PaperBallot.confirmed_at.is_(None),
        PaperBallot.rejected_at.is_(None),
    )
    done = (
        select(PaperBallot)
        .where(
            PaperBallot.process_id == process.id,
            (PaperBallot.confirmed_at.is_not(None)) | (PaperBallot.rejected_at.is_not(None)),
        )
        .order_by(PaperBallot.id.desc())
        .limit(limit)
    )
    return list(db.execute(pending.order_by(PaperBallot.id)).scalars()) + list(db.execute(done).scalars())


def people(db: Session, entries: list[PaperBallot]) -> dict[int, User]:
    """The staff members who entered or confirmed ``entries``, by id (for the list)."""
    ids = {e.entered_by_id for e in entries} | {e.confirmed_by_id for e in entries if e.confirmed_by_id}
    if not ids:
        return {}
    return {u.id: u for u in db.execute(select(User).where(User.id.in_(ids))).scalars() if u.id is not None}
