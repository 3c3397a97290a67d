"""Comment and notification routes. Thin handlers: load the object (404), check the named permission
(403, or the login page for anonymous visitors), validate the form (400 with messages), call one service.

Every action works without JavaScript (plain forms, post/redirect/get back to ``#comment-<id>``) and with
htmx (``HX-Request``: the changed partial is returned and swapped inline; errors come back as partials
marked with ``X-Comments-Swap`` so app/static/js/comments.js lets htmx show them).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlmodel import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from app.database import utcnow
from app.i18n import gettext as _
from app.models import User
from app.permissions import require
from app.ratelimit import RateLimited
from app.web import error_page, flash, form_of, rate_limit, redirect, render, settings_of, view
from proposals import (
    comment_permissions,  # noqa: F401  (registers the comments.* permissions)
    comments,
    notifications,
)
from proposals.comment_forms import CommentForm, NotificationSettingsForm, VoteForm
from proposals.models import Comment, Notification, Proposal
from proposals.visibility import can_view_proposal, is_public, public_comment

SWAP = {"X-Comments-Swap": "1"}


def _htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _viewer(request: Request) -> User | None:
    return getattr(request.state, "user", None)


def _public_proposal(db: Session, proposal_id: int) -> Proposal:
    proposal = db.get(Proposal, proposal_id)
    if proposal is None or not is_public(db, proposal_id):
        raise HTTPException(404)
    return proposal


def _shown(db: Session, comment_id: int) -> bool:
    """The comment passes the visibility rule (moderation may hide comments)."""
    return (
        db.execute(select(Comment.id).where(Comment.id == comment_id, public_comment())).first() is not None
    )


def _comment(request: Request, db: Session) -> tuple[Comment, Proposal]:
    """The comment in the path, if it is shown and its proposal may be seen by the viewer; else 404."""
    comment = db.get(Comment, request.path_params["comment_id"])
    if comment is None or not _shown(db, comment.id):  # type: ignore[arg-type]
        raise HTTPException(404)
    proposal = db.get(Proposal, comment.proposal_id)
    assert proposal is not None
    if not can_view_proposal(_viewer(request), proposal, is_public=is_public(db, proposal.id)):  # type: ignore[arg-type]
        raise HTTPException(404)
    return comment, proposal


def _anchor(comment: Comment) -> str:
    return f"/proposals/{comment.proposal_id}#comment-{comment.id}"


def _fail(request: Request, status: int, message: str) -> Response:
    """A refusal: inline alert for htmx, the error page otherwise."""
    if _htmx(request):
        headers = {**SWAP, "HX-Retarget": "#comment-alert", "HX-Reswap": "innerHTML"}
        return render(request, "proposals/_comment_alert.html", status, headers=headers, message=message)
    return error_page(request, status, message)


def _closed(request: Request, proposal: Proposal) -> Response | None:
    if _viewer(request) is not None and not comments.is_open(proposal):
        return _fail(request, 403, _("Comments on this proposal are closed."))
    return None


def _ctx(db: Session, request: Request, proposal: Proposal, **extra: Any) -> dict[str, Any]:
    sort = form_of(request).get("sort") or request.query_params.get("sort") or "oldest"
    return {
        "proposal": proposal,
        "comment_now": utcnow(),
        "comments_open": comments.comments_open(db, proposal=proposal),
        "comment_sort": sort if sort in comments.SORTS else "oldest",
        "comment_max_body": comments.MAX_BODY,
        **extra,
    }


def _form_page(
    request: Request,
    db: Session,
    *,
    mode: str,
    proposal: Proposal,
    form: CommentForm,
    target=None,
    status=200,
) -> Response:
    """The comment form: the partial for htmx, a page of its own without JavaScript."""
    node = comments.node_for(db, comment=target, viewer=_viewer(request)) if target is not None else None
    ctx = _ctx(db, request, proposal, mode=mode, form=form, node=node)
    headers = SWAP if status >= 400 else None
    partial = "proposals/_comment_edit_form.html" if mode == "edit" else "proposals/_comment_form.html"
    return render(request, "proposals/_comment_page.html", status, partial=partial, headers=headers, **ctx)


# --- the comment section ----------------------------------------------------------------------------------


@view
def section(request: Request, db: Session) -> Response:
    """GET /proposals/{id}/comments?sort=: the comment section (htmx sort switch) or a redirect."""
    proposal = db.get(Proposal, request.path_params["proposal_id"])
    viewer = _viewer(request)
    if proposal is None or not can_view_proposal(viewer, proposal, is_public=is_public(db, proposal.id)):  # type: ignore[arg-type]
        raise HTTPException(404)
    sort = request.query_params.get("sort", "oldest")
    sort = sort if sort in comments.SORTS else "oldest"
    if not _htmx(request):
        return redirect(f"/proposals/{proposal.id}?sort={sort}#comments")
    ctx = comments.thread_context(db, proposal=proposal, viewer=viewer, sort=sort)
    return render(request, "proposals/_comments.html", **ctx)


@view
def create(request: Request, db: Session) -> Response:
    """POST /proposals/{id}/comments: a new comment, or a reply when ``parent_id`` is given."""
    proposal = _public_proposal(db, request.path_params["proposal_id"])
    if (refused := _closed(request, proposal)) is not None:
        return refused
    user = require(request, "comments.create", proposal)
    form = CommentForm(form_of(request))
    parent = None
    if form.is_valid() and form.cleaned["parent_id"] is not None:
        parent = db.get(Comment, form.cleaned["parent_id"])
        if parent is None or parent.proposal_id != proposal.id or not _shown(db, parent.id):  # type: ignore[arg-type]
            form.add_error("__all__", _("This comment belongs to another proposal."))
    mode = "reply" if form.value("parent_id") else "new"
    if form.errors:
        return _form_page(request, db, mode=mode, proposal=proposal, form=form, target=parent, status=400)
    try:
        rate_limit(request, db, "post", f"user:{user.id}")
    except RateLimited as exc:
        if not _htmx(request):
            raise
        minutes = max(1, exc.retry_after // 60)
        msg = _("Too many attempts. Please wait %(minutes)s minutes and try again.", minutes=minutes)
        return _fail(request, 429, msg)
    try:
        comment = comments.create_comment(
            db, proposal=proposal, author=user, body=form.cleaned["body"], parent=parent
        )
    except comments.CommentError as exc:
        if exc.status != 400:
            return _fail(request, exc.status, str(exc))
        form.add_error(exc.field if exc.field in form.fields else "__all__", str(exc))
        return _form_page(request, db, mode=mode, proposal=proposal, form=form, target=parent, status=400)
    if not _htmx(request):
        flash(request, _("Your comment has been published."))
        return redirect(_anchor(comment))
    ctx = _ctx(db, request, proposal)
    node = comments.node_for(db, comment=comment, viewer=user)
    top_newest = comment.parent_id is None and ctx["comment_sort"] == "newest"
    headers = {
        "HX-Retarget": f"#replies-{comment.parent_id}" if comment.parent_id else "#comment-list",
        "HX-Reswap": "afterbegin" if top_newest else "beforeend",
    }
    return render(
        request,
        "proposals/_comment_created.html",
        headers=headers,
        node=node,
        answered=parent,
        form=CommentForm(),
        count=proposal.comment_count,
        **ctx,
    )


@view
def show(request: Request, db: Session) -> Response:
    """GET /comments/{id}: the comment's article (htmx, e.g. after cancelling an edit) or its anchor."""
    comment, proposal = _comment(request, db)
    if not _htmx(request):
        return redirect(_anchor(comment))
    node = comments.node_for(db, comment=comment, viewer=_viewer(request))
    return render(request, "proposals/_comment_article.html", node=node, **_ctx(db, request, proposal))


@view
def reply(request: Request, db: Session) -> Response:
    """GET /comments/{id}/reply: the reply form (inline for htmx; ``?close=1`` closes it)."""
    comment, proposal = _comment(request, db)
    if _htmx(request) and request.query_params.get("close"):
        return HTMLResponse("")
    proposal = _public_proposal(db, proposal.id)  # type: ignore[arg-type]
    if (refused := _closed(request, proposal)) is not None:
        return refused
    require(request, "comments.create", proposal)
    if comment.deleted_at is not None:
        return _fail(request, 400, _("This comment was deleted; it can no longer be answered."))
    form = CommentForm(initial={"parent_id": comment.id})
    return _form_page(request, db, mode="reply", proposal=proposal, form=form, target=comment)


@view
def edit(request: Request, db: Session) -> Response:
    """GET/POST /comments/{id}/edit: change one's own comment within the edit window."""
    comment, proposal = _comment(request, db)
    user = require(request, "comments.edit", comment)
    minutes = settings_of(request).comment_edit_minutes
    if not comments.comments_open(db, proposal=proposal):
        return _fail(request, 403, _("Comments on this proposal are closed."))
    if not comments.within_edit_window(comment, minutes=minutes):
        return _fail(
            request, 403, _("Comments can only be edited within %(n)s minutes of posting.", n=minutes)
        )
    if request.method == "GET":
        form = CommentForm(initial={"body": comment.body_md})
        return _form_page(request, db, mode="edit", proposal=proposal, form=form, target=comment)
    form = CommentForm(form_of(request))
    if form.is_valid():
        try:
            comments.edit_comment(
                db, comment=comment, editor=user, body=form.cleaned["body"], edit_minutes=minutes
            )
        except comments.CommentError as exc:
            if exc.status != 400:
                return _fail(request, exc.status, str(exc))
            form.add_error("body", str(exc))
    if form.errors:
        return _form_page(request, db, mode="edit", proposal=proposal, form=form, target=comment, status=400)
    if not _htmx(request):
        flash(request, _("Your comment has been saved."))
        return redirect(_anchor(comment))
    node = comments.node_for(db, comment=comment, viewer=user)
    ctx = _ctx(db, request, proposal, status_message=_("Your comment has been saved."))
    return render(request, "proposals/_comment_article.html", node=node, **ctx)


@view
def delete(request: Request, db: Session) -> Response:
    """GET /comments/{id}/delete asks; POST deletes one's own comment (kept as a placeholder)."""
    comment, proposal = _comment(request, db)
    user = require(request, "comments.delete", comment)
    if request.method == "GET":
        return _form_page(request, db, mode="delete", proposal=proposal, form=CommentForm(), target=comment)
    try:
        comments.delete_comment(db, comment=comment, actor=user)
    except comments.CommentError as exc:
        return _fail(request, exc.status, str(exc))
    db.refresh(proposal)
    if not _htmx(request):
        flash(request, _("Your comment has been deleted."))
        return redirect(f"/proposals/{proposal.id}#comments")
    node = comments.node_for(db, comment=comment, viewer=user)
    ctx = _ctx(db, request, proposal, status_message=_("Your comment has been deleted."))
    return render(request, "proposals/_comment_article.html", node=node, count=proposal.comment_count, **ctx)


def _vote(request: Request, db: Session, *, remove: bool) -> Response:
    comment, proposal = _comment(request, db)
    user = require(request, "comments.vote", comment)
    value = None
    if not remove:
        form = VoteForm(form_of(request))
        if not form.is_valid():
            return _fail(request, 400, _("Please choose one of the options."))
        value = form.cleaned["value"]
    try:
        comments.set_vote(db, comment=comment, voter=user, value=value)
    except comments.CommentError as exc:
        return _fail(request, exc.status, str(exc))
    if not _htmx(request):
        return redirect(_anchor(comment))
    node = comments.node_for(db, comment=comment, viewer=user)
    message = {
        1: _("Your vote: helpful."),
        -1: _("Your vote: not helpful."),
        None: _("Your vote was removed."),
    }
    ctx = _ctx(db, request, proposal, status_message=message[value])
    return render(request, "proposals/_comment_votes.html", node=node, **ctx)


@view
def vote(request: Request, db: Session) -> Response:
    """POST /comments/{id}/vote with value=1|-1: set one's vote (idempotent)."""
    return _vote(request, db, remove=False)


@view
def unvote(request: Request, db: Session) -> Response:
    """POST /comments/{id}/unvote: remove one's vote (the pressed vote button posts here)."""
    return _vote(request, db, remove=True)


# --- notifications ----------------------------------------------------------------------------------------


def _page_number(raw: Any) -> int:
    return int(raw) if isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) < 7 else 1


@view
def notification_list(request: Request, db: Session) -> Response:
    user = require(request, "notifications.view")
    page = notifications.list_entries(db, user=user, page=_page_number(request.query_params.get("page")))
    return render(request, "proposals/notifications.html", page=page, describe=notifications.describe)


@view
def notification_open(request: Request, db: Session) -> Response:
    """GET /notifications/{id}: mark it read and go to what it points at."""
    note = db.get(Notification, request.path_params["notification_id"])
    if note is None:
        raise HTTPException(404)
    user = require(request, "notifications.view", note)
    notifications.mark_read(db, notification=note, user=user)
    anchor = f"#comment-{note.comment_id}" if note.comment_id else ""
    return redirect(f"/proposals/{note.proposal_id}{anchor}")


@view
def notification_read(request: Request, db: Session) -> Response:
    """POST /notifications/{id}/read: mark one notification as read."""
    note = db.get(Notification, request.path_params["notification_id"])
    if note is None:
        raise HTTPException(404)
    user = require(request, "notifications.view", note)
    notifications.mark_read(db, notification=note, user=user)
    return redirect(f"/notifications?page={_page_number(form_of(request).get('page'))}")


@view
def notification_read_all(request: Request, db: Session) -> Response:
    user = require(request, "notifications.view")
    count = notifications.mark_all_read(db, user=user)
    flash(request, _("All notifications are marked as read.") if count else _("There was nothing unread."))
    return redirect("/notifications")


@view
def notification_settings(request: Request, db: Session) -> Response:
    """GET/POST /notifications/settings: per kind, in the app and/or in the e-mail digest."""
    user = require(request, "notifications.view")
    kinds = notifications.kinds_for(user)
    prefs = notifications.preferences(db, user=user)
    if request.method == "POST":
        form = NotificationSettingsForm(kinds, form_of(request))
        if form.is_valid():
            notifications.save_preferences(db, user=user, values=form.choices())
            flash(request, _("Your notification settings have been saved."))
            return redirect("/notifications/settings")
        return render(request, "proposals/notification_settings.html", 400, form=form, kinds=kinds)
    initial = {
        f"{ch}_{k}": "on" if v[i] else ""
        for k, v in prefs.items()
        for i, ch in enumerate(("in_app", "email"))
    }
    form = NotificationSettingsForm(kinds, initial=initial)
    return render(request, "proposals/notification_settings.html", form=form, kinds=kinds)


routes = [
    Route("/proposals/{proposal_id:int}/comments", section, name="comments_section"),
    Route("/proposals/{proposal_id:int}/comments", create, methods=["POST"], name="comment_create"),
    Route("/comments/{comment_id:int}", show, name="comment_show"),
    Route("/comments/{comment_id:int}/reply", reply, name="comment_reply"),
    Route("/comments/{comment_id:int}/edit", edit, methods=["GET", "POST"], name="comment_edit"),
    Route("/comments/{comment_id:int}/delete", delete, methods=["GET", "POST"], name="comment_delete"),
    Route("/comments/{comment_id:int}/vote", vote, methods=["POST"], name="comment_vote"),
    Route("/comments/{comment_id:int}/unvote", unvote, methods=["POST"], name="comment_unvote"),
    Route("/notifications", notification_list, name="notifications"),
    Route(
        "/notifications/settings",
        notification_settings,
        methods=["GET", "POST"],
        name="notification_settings",
    ),
    Route("/notifications/read-all", notification_read_all, methods=["POST"], name="notifications_read_all"),
    Route("/notifications/{notification_id:int}", notification_open, name="notification_open"),
    Route(
        "/notifications/{notification_id:int}/read",
        notification_read,
        methods=["POST"],
        name="notification_read",
    ),
]
