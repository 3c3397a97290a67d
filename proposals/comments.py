"""Comment use cases (threaded comments, edits, deletion, votes). Being built; see thread_context()."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from app.models import User
from proposals.models import Proposal

SORTS = ("oldest", "newest", "best")


def thread_context(
    db: Session, *, proposal: Proposal, viewer: User | None, sort: str = "oldest"
) -> dict[str, Any]:
    """Template context for the comment section of a proposal page (``templates/proposals/_comments.html``)."""
    return {"comments": [], "comment_sort": sort if sort in SORTS else "oldest", "comment_sorts": SORTS}
