"""Actions on one proposal: publish, withdraw, staff decisions and the review queue, support and follow
(htmx partial or redirect back), and attachments (download, delete).

Every handler loads the proposal through the visibility rule (404), then checks the named permission
on that object (403), then calls one service."""

from __future__ import annotations

from sqlmodel import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from app.i18n import gettext as _
from app.permissions import require
from app.security import safe_next
from app.web import flash, form_of, redirect, render, settings_of, view
from proposals import attachments, lifecycle, listing, supports
from proposals.forms import StatusForm
from proposals.lifecycle import ProposalError
from proposals.models import ProposalStatus
from proposals.proposal_views import current_user, load_proposal


def _back(request: Request, proposal_id: int) -> str:
    return safe_next(str(form_of(request).get("next", "")), f"/proposals/{proposal_id}")


@view
def publish(request: Request, db: Session) -> Response:
    proposal = load_proposal(request, db)
    user = require(request, "proposals.publish", proposal)
    try:
        lifecycle.change_status(db, proposal=proposal, actor=user, to_status=ProposalStatus.PUBLISHED)
    except ProposalError as exc:
        raise HTTPException(400, str(exc)) from exc
    flash(request, _("Your proposal has been published."))
    return redirect(f"/proposals/{proposal.id}")


@view
def withdraw(request: Request, db: Session) -> Response:
    proposal = load_proposal(request, db)
    user = require(request, "proposals.withdraw", proposal)
    options = [ProposalStatus.WITHDRAWN.value]
    if request.method == "GET":
        form = StatusForm(initial={"to": options[0]}, options=options)
        return render(request, "proposals/withdraw.html", proposal=proposal, form=form)
    form = StatusForm({**dict(form_of(request)), "to": options[0]}, options=options)
    if form.is_valid():
        try:
            lifecycle.change_status(
                db, proposal=proposal, actor=user, to_status=form.cleaned["to"], reason=form.cleaned["reason"]
            )
        except ProposalError as exc:
            form.add_error(exc.field if exc.field in form.fields else "reason", str(exc))
    if form.errors:
        return render(request, "proposals/withdraw.html", 400, proposal=proposal, form=form)
    flash(request, _("Your proposal has been withdrawn."))
    return redirect(f"/proposals/{proposal.id}")


@view
def change_status(request: Request, db: Session) -> Response:
    """Staff: the next lifecycle step with a public reason (required for a rejection)."""
    proposal = load_proposal(request, db)
    user = require(request, "proposals.review", proposal)
    options = lifecycle.allowed_steps(proposal, staff=True)
    next_url = _back(request, proposal.id)
    if request.method == "GET":
        form = StatusForm(initial={"to": options[0] if options else ""}, options=options)
        return render(request, "proposals/status.html", proposal=proposal, form=form, next_url=next_url)
    form = StatusForm(form_of(request), options=options, reason_required_for=lifecycle.REASON_REQUIRED)
    if form.is_valid():
        try:
            lifecycle.change_status(
                db,
                proposal=proposal,
                actor=user,
                to_status=form.cleaned["to"],
                reason=form.cleaned["reason"],
                by_staff=True,
            )
        except ProposalError as exc:
            form.add_error(exc.field if exc.field in form.fields else "to", str(exc))
    if form.errors:
        return render(request, "proposals/status.html", 400, proposal=proposal, form=form, next_url=next_url)
    flash(request, _("The status has been changed."))
    return redirect(next_url)


@view
def review_queue(request: Request, db: Session) -> Response:
    require(request, "proposals.review")
    cards = listing.review_queue(db)
    forms = {
        c.proposal.id: StatusForm(options=lifecycle.allowed_steps(c.proposal, staff=True)) for c in cards
    }
    return render(request, "proposals/review.html", cards=cards, forms=forms)


def _support_response(request: Request, db: Session, proposal) -> Response:
    if request.headers.get("hx-request") == "true":
        viewer = current_user(request)
        return render(
            request,
            "proposals/_support.html",
            proposal=proposal,
            supported=supports.has_supported(db, proposal=proposal, user=viewer),
        )
    return redirect(_back(request, proposal.id))


def _support(request: Request, db: Session, *, add: bool) -> Response:
    proposal = load_proposal(request, db)
    user = require(request, "proposals.support", proposal)
    try:
        if add:
            supports.support(db, proposal=proposal, user=user, settings=settings_of(request))
        else:
            supports.unsupport(db, proposal=proposal, user=user)
    except ProposalError as exc:
        raise HTTPException(400, str(exc)) from exc
    return _support_response(request, db, proposal)


@view
def support(request: Request, db: Session) -> Response:
    return _support(request, db, add=True)


@view
def unsupport(request: Request, db: Session) -> Response:
    return _support(request, db, add=False)


def _follow(request: Request, db: Session, *, add: bool) -> Response:
    proposal = load_proposal(request, db)
    user = require(request, "proposals.follow", proposal)
    if add:
        supports.follow(db, proposal=proposal, user=user)
    else:
        supports.unfollow(db, proposal=proposal, user=user)
    if request.headers.get("hx-request") == "true":
        following = supports.is_following(db, proposal=proposal, user=user)
        return render(request, "proposals/_follow.html", proposal=proposal, following=following)
    return redirect(_back(request, proposal.id))


@view
def follow(request: Request, db: Session) -> Response:
    return _follow(request, db, add=True)


@view
def unfollow(request: Request, db: Session) -> Response:
    return _follow(request, db, add=False)


@view
def download(request: Request, db: Session) -> Response:
    """An attachment of a proposal the viewer may see, as a download in a sandbox (ASVS V3.2.1)."""
    proposal = load_proposal(request, db)
    row = attachments.attachment_of(db, proposal=proposal, attachment_id=request.path_params["attachment_id"])
    if row is None:
        raise HTTPException(404)
    path = attachments.storage_path(settings_of(request), row)
    if not path.is_file():
        raise HTTPException(404)
    return FileResponse(path, media_type=row.content_type, headers=attachments.download_headers(row))


@view
def delete_attachment(request: Request, db: Session) -> Response:
    proposal = load_proposal(request, db)
    require(request, "proposals.attach", proposal)
    row = attachments.attachment_of(db, proposal=proposal, attachment_id=request.path_params["attachment_id"])
    if row is None:
        raise HTTPException(404)
    if request.method == "GET":
        return render(request, "proposals/attachment_delete.html", proposal=proposal, attachment=row)
    attachments.delete_attachment(db, attachment=row, settings=settings_of(request))
    flash(request, _("The attachment has been deleted."))
    return redirect(f"/proposals/{proposal.id}/edit")


P = "/proposals/{proposal_id:int}"
routes = [
    Route("/proposals/review", review_queue, name="proposal_review"),
    Route(f"{P}/publish", publish, methods=["POST"], name="proposal_publish"),
    Route(f"{P}/withdraw", withdraw, methods=["GET", "POST"], name="proposal_withdraw"),
    Route(f"{P}/status", change_status, methods=["GET", "POST"], name="proposal_status"),
    Route(f"{P}/support", support, methods=["POST"], name="proposal_support"),
    Route(f"{P}/unsupport", unsupport, methods=["POST"], name="proposal_unsupport"),
    Route(f"{P}/follow", follow, methods=["POST"], name="proposal_follow"),
    Route(f"{P}/unfollow", unfollow, methods=["POST"], name="proposal_unfollow"),
    Route(f"{P}/attachments/{{attachment_id:int}}", download, name="proposal_attachment"),
    Route(
        f"{P}/attachments/{{attachment_id:int}}/delete",
        delete_attachment,
        methods=["GET", "POST"],
        name="proposal_attachment_delete",
    ),
]
