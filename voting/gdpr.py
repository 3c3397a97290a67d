"""Voting in a resident's data export and account deletion (plugin of app/gdpr.py, listed in
app.main.GDPR_MODULES).

Ballots are secret: a ballot row never names its voter; the only link is ``VoterLink``, a keyed hash of the
voter id (HMAC with the process's link key). The export therefore says "you voted in process X" while that
link exists, never what was chosen. Deleting the account deletes the links: the ballots stay counted,
nobody (the platform included) can tie them to the person any more."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlmodel import Session

from app.i18n import gettext as _
from app.models import User
from app.settings import Settings
from voting.ballots import voter_hash
from voting.models import Process, VoterLink


def _links(db: Session, settings: Settings, user: User) -> list[tuple[Process, VoterLink]]:
    out = []
    for process in db.execute(select(Process).order_by(Process.id)).scalars():
        hashed = voter_hash(settings.secret_key, process.id, user.id)
        for link in db.execute(
            select(VoterLink).where(VoterLink.process_id == process.id, VoterLink.voter_hash == hashed)
        ).scalars():
            out.append((process, link))
    return out


def export(db: Session, settings: Settings, user: User) -> dict[str, Any]:
    return {
        "participation_in_votes": {
            "about": _(
                "Your ballots are secret: they are stored without your name, so this export cannot contain "
                "what you chose. It lists the votes in which a ballot of yours is still linked to your account "
                "(through a keyed hash); once staff destroy the links after the final result, or you delete "
                "your account, not even the platform can tell."
            ),
            "votes": [
                {"process_id": p.id, "process": p.title, "ballot": "city" if link.scope == 0 else "district"}
                for p, link in _links(db, settings, user)
            ],
        }
    }


def erase(db: Session, settings: Settings, user: User, mode: str) -> None:
    ids = [link.id for _p, link in _links(db, settings, user)]
    if ids:
        db.execute(delete(VoterLink).where(VoterLink.id.in_(ids)))
