"""Moderation permissions: reporting is open to anyone; moderators act on content; only admins ban and
configure the grounds; the affected author appeals; the transparency report is public."""

from __future__ import annotations

from typing import Any

from app.models import User
from app.permissions import any_of, is_admin, is_authenticated, is_moderator, is_staff, register


def _anyone(user: User | None, _obj: Any = None) -> bool:
    return user is None or is_authenticated(user)


def _is_affected_author(user: User | None, decision: Any = None) -> bool:
    """The author a decision restricts (signed in; suspended authors may still appeal by mail link)."""
    return (
        user is not None
        and not user.is_deleted
        and decision is not None
        and getattr(decision, "author_id", None) == user.id
    )


def _not_own(user: User | None, obj: Any = None) -> bool:
    """Moderators cannot act on their own content (``obj`` carries ``author_id``)."""
    return is_moderator(user) and (obj is None or getattr(obj, "author_id", None) != user.id)  # type: ignore[union-attr]


register("moderation.report", _anyone, "Report a proposal, comment, attachment or profile")
register("moderation.queue", is_moderator, "See the moderation queue and the reports")
register("moderation.decide", _not_own, "Decide on reported content (not one's own)")
register("moderation.ban", is_admin, "Ban an account permanently")
register("moderation.appeal", _is_affected_author, "Appeal a decision on one's own content or account")
register("moderation.grounds", is_admin, "Configure the grounds, pre-moderation and the word list")
register("moderation.transparency", lambda user, obj=None: True, "See the public transparency report")
register("moderation.export", any_of(is_staff, is_moderator), "Export the transparency counts as CSV")
register("moderation.notices", is_authenticated, "See one's statements of reasons")
