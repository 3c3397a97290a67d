"""Comment use cases: threaded comments on proposals, edits within a window, soft deletion, votes.

Rules (see docs in the functions):
- Markdown body of 1–5,000 characters, rendered with ``render_markdown`` and stored as ``body_html``.
- Replies nest up to ``MAX_DEPTH``; a reply to a comment at that depth joins the same parent at that depth
  ("then flat"), and its notification still goes to the author of the comment that was answered.
- ``Proposal.comment_count`` counts the comments that are shown: not deleted and not hidden by moderation.
  It changes in the same transaction with an atomic ``UPDATE ... SET n = n ± 1``; when moderation hides or
  restores a comment it calls :func:`recount` (row lock on the proposal, then a fresh count).
- A hidden comment with shown replies stays as a "hidden by moderation" placeholder (its text is never
  sent), like a deleted one, so the thread keeps its shape.
- Deleting keeps the row as a placeholder so replies stay in place, and wipes the text (it is never
  shown again, in pages, the API or exports). Replies to a deleted comment are refused.
- One vote per user per comment (UNIQUE in the database). Voting locks the comment row first, so
  concurrent votes are serialised and the counters stay exact; a repeated vote is a no-op.

Functions are keyword-only and never commit: the request's unit of work does.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update
from sqlmodel import Session

from app import events
from app.database import utcnow
from app.i18n import gettext as _
from app.models import User
from app.sanitize import render_markdown
from proposals import notifications
from proposals.models import OPEN_FOR_COMMENTS, Comment, CommentVote, NotificationKind, Proposal
from proposals.visibility import is_public, public_comment

SORTS = ("oldest", "newest", "best")
MAX_DEPTH = 4
MIN_BODY = 1
MAX_BODY = 5000


class CommentError(Exception):
    """A comment action was refused. ``status`` is the HTTP status a route should answer with, ``field``
    the form field the message belongs to (``__all__`` for the whole form)."""

    def __init__(self, message: str, *, status: int = 400, field: str = "__all__"):
        super().__init__(message)
        self.status = status
        self.field = field


# --- rules ------------------------------------------------------------------------------------------------


def is_open(proposal: Proposal) -> bool:
    """Comments are open while the proposal's status allows them and nobody locked them."""
    return proposal.status in OPEN_FOR_COMMENTS and proposal.comments_locked_at is None


def comments_open(db: Session, *, proposal: Proposal) -> bool:
    """``is_open`` and the proposal is public (not a draft, not hidden by moderation)."""
    return is_open(proposal) and proposal.id is not None and is_public(db, proposal.id)


def within_edit_window(comment: Comment, *, minutes: int, now: dt.datetime | None = None) -> bool:
    return (now or utcnow()) - comment.created_at <= dt.timedelta(minutes=minutes)


def _require_open(db: Session, proposal: Proposal) -> None:
    if not comments_open(db, proposal=proposal):
        raise CommentError(_("Comments on this proposal are closed."), status=403)


def _clean_body(body: str) -> str:
    body = (body or "").strip()
    if len(body) < MIN_BODY:
        raise CommentError(_("Please write a comment."), field="body")
    if len(body) > MAX_BODY:
        raise CommentError(_("Please enter at most %(n)s characters.", n=MAX_BODY), field="body")
    return body


def _bump_count(db: Session, proposal_id: int, delta: int) -> None:
    db.execute(
        update(Proposal)
        .where(Proposal.id == proposal_id)
        .values(comment_count=Proposal.comment_count + delta)
        .execution_options(synchronize_session=False)
    )


def recount(db: Session, *, proposal_id: int) -> int:
    """Set a proposal's comment count from its shown comments (after moderation hid or restored one).
    The proposal row is locked first, so a concurrent ``_bump_count`` either waits for this count or is
    already in it."""
    db.execute(
        update(Proposal)
        .where(Proposal.id == proposal_id)
        .values(comment_count=Proposal.comment_count)
        .execution_options(synchronize_session=False)
    )
    count = db.execute(
        select(func.count(Comment.id)).where(
            Comment.proposal_id == proposal_id, Comment.deleted_at.is_(None), public_comment()
        )
    ).scalar_one()
    db.execute(
        update(Proposal)
        .where(Proposal.id == proposal_id)
        .values(comment_count=count)
        .execution_options(synchronize_session=False)
    )
    return count


def _refresh(db: Session, *objs: Any) -> None:
    for obj in objs:
        db.refresh(obj)


# --- use cases --------------------------------------------------------------------------------------------


def create_comment(
    db: Session, *, proposal: Proposal, author: User, body: str, parent: Comment | None = None
) -> Comment:
    """Post a comment (or a reply to ``parent``) and notify followers and the answered author."""
    _require_open(db, proposal)
    body = _clean_body(body)
    depth, parent_id = 0, None
    if parent is not None:
        if parent.proposal_id != proposal.id:
            raise CommentError(_("This comment belongs to another proposal."))
        if parent.deleted_at is not None:
            raise CommentError(_("This comment was deleted; it can no longer be answered."))
        if parent.depth >= MAX_DEPTH:
            depth, parent_id = MAX_DEPTH, parent.parent_id
        else:
            depth, parent_id = parent.depth + 1, parent.id
    comment = Comment(
        proposal_id=proposal.id,  # type: ignore[arg-type]
        author_id=author.id,  # type: ignore[arg-type]
        parent_id=parent_id,
        depth=depth,
        body_md=body,
        body_html=render_markdown(body),
    )
    db.add(comment)
    db.flush()
    events.publish(db, "comment.created", comment_id=comment.id)
    _bump_count(db, proposal.id, +1)  # type: ignore[arg-type]
    _refresh(db, proposal)
    answered: set[int] = set()
    if parent is not None and parent.author_id != author.id:
        if notifications.notify_users(
            db, user_ids=[parent.author_id], kind=NotificationKind.REPLY, proposal=proposal, comment=comment
        ):
            answered.add(parent.author_id)
    notifications.notify_followers(
        db, proposal=proposal, kind=NotificationKind.COMMENT, actor=author, comment=comment, exclude=answered
    )
    return comment


def edit_comment(
    db: Session,
    *,
    comment: Comment,
    editor: User,
    body: str,
    edit_minutes: int,
    now: dt.datetime | None = None,
) -> Comment:
    """Change one's own comment within ``edit_minutes`` of posting; it is then marked as edited."""
    if comment.author_id != editor.id or comment.deleted_at is not None:
        raise CommentError(_("You can only edit your own comments."), status=403)
    now = now or utcnow()
    if not within_edit_window(comment, minutes=edit_minutes, now=now):
        raise CommentError(
            _("Comments can only be edited within %(n)s minutes of posting.", n=edit_minutes), status=403
        )
    proposal = db.get(Proposal, comment.proposal_id)
    assert proposal is not None
    _require_open(db, proposal)
    body = _clean_body(body)
    if body != comment.body_md:
        comment.body_md = body
        comment.body_html = render_markdown(body)
        comment.edited_at = now
        db.add(comment)
        db.flush()
    return comment


def delete_comment(db: Session, *, comment: Comment, actor: User) -> bool:
    """Delete one's own comment (also after comments closed). Keeps the row as a placeholder, wipes the
    text, and lowers the proposal's comment count. Returns False if it was already deleted."""
    if comment.author_id != actor.id:
        raise CommentError(_("You can only delete your own comments."), status=403)
    shown = _is_shown(db, comment.id)  # type: ignore[arg-type]
    result = db.execute(
        update(Comment)
        .where(Comment.id == comment.id, Comment.deleted_at.is_(None))
        .values(deleted_at=utcnow(), body_md="", body_html="")
        .execution_options(synchronize_session=False)
    )
    changed = bool(result.rowcount)
    if changed and shown:
        _bump_count(db, comment.proposal_id, -1)
    db.flush()
    _refresh(db, comment)
    return changed


def _is_shown(db: Session, comment_id: int) -> bool:
    return (
        db.execute(select(Comment.id).where(Comment.id == comment_id, public_comment())).first() is not None
    )


def _lock_comment(db: Session, comment_id: int) -> None:
    """Serialise writers on one comment: a no-op UPDATE row-locks it on PostgreSQL and takes the write
    lock on SQLite, so the vote read that follows sees every committed vote."""
    db.execute(
        update(Comment)
        .where(Comment.id == comment_id)
        .values(score=Comment.score)
        .execution_options(synchronize_session=False)
    )


def _vote_allowed(db: Session, comment: Comment, voter: User) -> None:
    if comment.deleted_at is not None:
        raise CommentError(_("Deleted comments cannot be rated."), status=403)
    if comment.author_id == voter.id:
        raise CommentError(_("You cannot rate your own comment."), status=403)
    proposal = db.get(Proposal, comment.proposal_id)
    assert proposal is not None
    _require_open(db, proposal)


def set_vote(db: Session, *, comment: Comment, voter: User, value: int | None) -> Comment:
    """Set the voter's vote on ``comment`` to +1, -1, or remove it (``None``). Idempotent: repeating a
    request changes nothing, so a double submit leaves one vote. Score and counts stay exact."""
    if value not in (1, -1, None):
        raise CommentError(_("Please choose one of the options."), field="value")
    _vote_allowed(db, comment, voter)
    _lock_comment(db, comment.id)  # type: ignore[arg-type]
    existing = db.execute(
        select(CommentVote)
        .where(CommentVote.comment_id == comment.id, CommentVote.user_id == voter.id)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    old = existing.value if existing is not None else None
    if old == value:
        _refresh(db, comment)
        return comment
    if existing is not None and value is None:
        db.delete(existing)
    elif existing is not None:
        existing.value = value  # type: ignore[assignment]
        db.add(existing)
    else:
        db.add(CommentVote(comment_id=comment.id, user_id=voter.id, value=value))  # type: ignore[arg-type]
    db.flush()
    up = (value == 1) - (old == 1)
    down = (value == -1) - (old == -1)
    db.execute(
        update(Comment)
        .where(Comment.id == comment.id)
        .values(
            upvotes=Comment.upvotes + up, downvotes=Comment.downvotes + down, score=Comment.score + up - down
        )
        .execution_options(synchronize_session=False)
    )
    _refresh(db, comment)
    return comment


# --- reading ----------------------------------------------------------------------------------------------


@dataclass
class CommentNode:
    """One comment as the page shows it, with its replies and what the viewer may do with it."""

    comment: Comment
    author_name: str
    author_deleted: bool
    is_hidden: bool = False  # hidden by moderation: shown as a placeholder, never its text
    my_vote: int = 0
    is_own: bool = False
    replies: list[CommentNode] = field(default_factory=list)

    @property
    def id(self) -> int:
        return self.comment.id  # type: ignore[return-value]

    @property
    def is_deleted(self) -> bool:
        return self.comment.deleted_at is not None

    @property
    def is_placeholder(self) -> bool:
        return self.is_deleted or self.is_hidden

    def editable(self, minutes: int, now: dt.datetime | None = None) -> bool:
        return (
            self.is_own
            and not self.is_placeholder
            and within_edit_window(self.comment, minutes=minutes, now=now)
        )

    @property
    def has_visible(self) -> bool:
        """A deleted or hidden comment stays (as a placeholder) only while it has replies that are shown."""
        return not self.is_placeholder or any(r.has_visible for r in self.replies)


def _order(sort: str):
    if sort == "newest":
        return (Comment.created_at.desc(), Comment.id.desc())
    if sort == "best":
        return (Comment.score.desc(), Comment.created_at, Comment.id)
    return (Comment.created_at, Comment.id)


def visible_comments(
    db: Session, *, proposal_id: int, sort: str = "oldest"
) -> list[tuple[Comment, User, bool]]:
    """Every comment of a proposal with its author and whether it is shown (False: hidden by moderation,
    a placeholder at most), in ``sort`` order (allowlisted)."""
    sort = sort if sort in SORTS else "oldest"
    stmt = (
        select(Comment, User, public_comment().label("shown"))
        .join(User, User.id == Comment.author_id)
        .where(Comment.proposal_id == proposal_id)
        .order_by(*_order(sort))
    )
    return [(c, u, bool(shown)) for c, u, shown in db.execute(stmt).all()]


def _my_votes(db: Session, *, proposal_id: int, viewer: User | None) -> dict[int, int]:
    if viewer is None:
        return {}
    stmt = (
        select(CommentVote.comment_id, CommentVote.value)
        .join(Comment, Comment.id == CommentVote.comment_id)
        .where(Comment.proposal_id == proposal_id, CommentVote.user_id == viewer.id)
    )
    return {cid: value for cid, value in db.execute(stmt).all()}


def make_node(
    comment: Comment, author: User, *, viewer: User | None, my_vote: int = 0, hidden: bool = False
) -> CommentNode:
    return CommentNode(
        comment=comment,
        author_name=author.display_name,
        author_deleted=author.is_deleted,
        is_hidden=hidden,
        my_vote=my_vote,
        is_own=viewer is not None and viewer.id == comment.author_id,
    )


def node_for(db: Session, *, comment: Comment, viewer: User | None) -> CommentNode:
    """A single comment (with its shown replies) for an htmx partial."""
    nodes = thread(db, proposal_id=comment.proposal_id, viewer=viewer, sort="oldest", keep_deleted=True)
    stack = list(nodes)
    while stack:
        node = stack.pop()
        if node.id == comment.id:
            return node
        stack.extend(node.replies)
    author = db.get(User, comment.author_id)
    assert author is not None
    return make_node(comment, author, viewer=viewer)


def thread(
    db: Session, *, proposal_id: int, viewer: User | None, sort: str = "oldest", keep_deleted: bool = False
) -> list[CommentNode]:
    """The comment tree: top level in ``sort`` order, replies oldest first (a conversation reads
    top-down). Deleted comments without shown replies are left out unless ``keep_deleted``."""
    rows = visible_comments(db, proposal_id=proposal_id, sort=sort)
    votes = _my_votes(db, proposal_id=proposal_id, viewer=viewer)
    nodes = {
        c.id: make_node(c, u, viewer=viewer, my_vote=votes.get(c.id, 0), hidden=not shown)  # type: ignore[misc]
        for c, u, shown in rows
    }
    roots: list[CommentNode] = []
    for comment, _user, _shown in rows:
        node = nodes[comment.id]  # type: ignore[index]
        parent = nodes.get(comment.parent_id) if comment.parent_id is not None else None
        if parent is not None:
            parent.replies.append(node)
        elif comment.parent_id is None:
            roots.append(node)
    for node in nodes.values():
        node.replies.sort(key=lambda n: (n.comment.created_at, n.id))
        if not keep_deleted:
            node.replies = [r for r in node.replies if r.has_visible]
    return roots if keep_deleted else [r for r in roots if r.has_visible]


def thread_context(
    db: Session, *, proposal: Proposal, viewer: User | None, sort: str = "oldest"
) -> dict[str, Any]:
    """Template context for the comment section of a proposal page (``templates/proposals/_comments.html``)."""
    from proposals.comment_forms import CommentForm  # the form module imports this one

    sort = sort if sort in SORTS else "oldest"
    return {
        "proposal": proposal,
        "comments": thread(db, proposal_id=proposal.id, viewer=viewer, sort=sort),  # type: ignore[arg-type]
        "comment_sort": sort,
        "comment_sorts": SORTS,
        "comments_open": comments_open(db, proposal=proposal),
        "comment_now": utcnow(),
        "comment_max_depth": MAX_DEPTH,
        "comment_max_body": MAX_BODY,
        "comment_form": CommentForm(),
    }
