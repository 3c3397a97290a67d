"""Notifications: in-app entries and the e-mail digest, opt-in per kind. Being built."""

from __future__ import annotations

from sqlmodel import Session

from app.models import User
from proposals.models import Comment, Proposal


def notify_followers(
    db: Session, *, proposal: Proposal, kind: str, actor: User | None = None, comment: Comment | None = None
) -> int:
    """Create a notification for every follower of ``proposal`` (except ``actor``); returns how many."""
    return 0


def notify_staff(db: Session, *, proposal: Proposal, kind: str) -> int:
    """Create a notification for every staff account (e.g. a proposal reached the support threshold)."""
    return 0
