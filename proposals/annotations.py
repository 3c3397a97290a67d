"""Public notes other packages attach to a proposal page, without proposals importing them.

Moderation registers a provider that returns the visible notes of its edit decisions ("title changed by
the moderation: …"), so readers see that and why a proposal was changed by someone other than its author.
A provider takes ``(db, proposal_id)`` and returns :class:`Note` objects.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlmodel import Session


@dataclass(frozen=True)
class Note:
    at: dt.datetime
    label: str  # who changed what, already translated
    text: str  # the visible note, plain text (escaped by the template)


Provider = Callable[[Session, int], list[Note]]
_providers: list[Provider] = []


def register(provider: Provider) -> None:
    if provider not in _providers:
        _providers.append(provider)


def notes_for(db: Session, *, proposal_id: int) -> list[Note]:
    notes = [note for provider in _providers for note in provider(db, proposal_id)]
    return sorted(notes, key=lambda n: n.at)
