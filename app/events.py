"""Domain events inside one unit of work. The core publishes (e.g. "role.changed"); feature packages
subscribe from the composition root (app/main.py), so app/ never imports them. Handlers run synchronously
in the publisher's transaction: what they write lands with the change or not at all."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sqlmodel import Session

Handler = Callable[..., None]
_handlers: dict[str, list[Handler]] = defaultdict(list)

EVENTS = {
    "role.changed": "an admin changed a user's role (user_id, role, previous, actor_id)",
    "account.suspended": "an admin suspended or unsuspended an account (user_id, until, actor_id)",
    "proposal.published": "a proposal became public (proposal_id)",
    "comment.created": "a comment was posted (comment_id)",
}


def subscribe(event: str, handler: Handler) -> None:
    if event not in EVENTS:
        raise KeyError(f"unknown event {event!r}")
    if handler not in _handlers[event]:
        _handlers[event].append(handler)


def publish(db: Session, event: str, **payload: Any) -> None:
    if event not in EVENTS:
        raise KeyError(f"unknown event {event!r}")
    for handler in _handlers[event]:
        handler(db, **payload)
