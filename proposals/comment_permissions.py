"""Named permissions for comments and notifications, built from small predicates (object level).

``comments.create`` takes the proposal; ``comments.edit``, ``comments.delete`` and ``comments.vote`` take
the comment; ``notifications.view`` takes a notification (or nothing for the list). Time-dependent rules
(the edit window) and the proposal's visibility are checked by the services, which need the clock and the
database.
"""

from __future__ import annotations

from typing import Any

from app.models import User
from app.permissions import all_of, is_authenticated, register
from proposals.comments import is_open
from proposals.models import Comment, Notification, Proposal


def proposal_open(_user: User | None, proposal: Any = None) -> bool:
    return isinstance(proposal, Proposal) and is_open(proposal)


def is_comment_author(user: User | None, comment: Any = None) -> bool:
    return isinstance(comment, Comment) and user is not None and comment.author_id == user.id


def is_not_comment_author(user: User | None, comment: Any = None) -> bool:
    return isinstance(comment, Comment) and user is not None and comment.author_id != user.id


def not_deleted(_user: User | None, comment: Any = None) -> bool:
    return isinstance(comment, Comment) and comment.deleted_at is None


def is_recipient(user: User | None, notification: Any = None) -> bool:
    if notification is None:
        return True
    return isinstance(notification, Notification) and user is not None and notification.user_id == user.id


can_comment = all_of(is_authenticated, proposal_open)
can_edit = all_of(is_authenticated, is_comment_author, not_deleted)
can_delete = all_of(is_authenticated, is_comment_author, not_deleted)
can_vote = all_of(is_authenticated, is_not_comment_author, not_deleted)
can_view_notifications = all_of(is_authenticated, is_recipient)

register("comments.create", can_comment, "Comment on (or reply within) a proposal open for comments")
register("comments.edit", can_edit, "Edit one's own comment (within the edit window)")
register("comments.delete", can_delete, "Delete one's own comment")
register("comments.vote", can_vote, "Vote on someone else's comment")
register("notifications.view", can_view_notifications, "See and manage one's own notifications")
