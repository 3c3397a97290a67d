"""Proposal pages: the list with search, the proposal page, creating and editing with a preview.

Thin handlers: parse, check the permission, call one service, render or redirect (post/redirect/get)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.i18n import gettext as _
from app.permissions import require
from app.web import flash, form_of, rate_limit, redirect, render, settings_of, view
from proposals import annotations, attachments, comments, lifecycle
from proposals.lifecycle import ProposalError
from proposals.models import ProposalStatus
from proposals.proposal_views import (
    LIST_HEADERS,
    current_user,
    data_from,
    initial_from,
    list_context,
    load_proposal,
    preview_of,
    proposal_form,
    results_partial,
)
from proposals.services import theme_and_district
from proposals.supports import has_supported, is_following

CREATE_ACTIONS = ("preview", "draft", "publish")
EDIT_ACTIONS = ("preview", "save", "publish")


@view
def proposal_list(request: Request, db: Session) -> Response:
    return render(
        request,
        "proposals/list.html",
        partial=results_partial(request),
        headers=dict(LIST_HEADERS),
        **list_context(request, db),
    )


def _form_page(
    request: Request, form, *, proposal=None, status: int = 200, preview=None, files=None
) -> Response:
    return render(
        request,
        "proposals/form.html",
        status,
        form=form,
        proposal=proposal,
        preview=preview,
        files=files or [],
        max_files=attachments.MAX_PER_PROPOSAL,
        upload_max_mb=settings_of(request).upload_max_mb,
    )


def _action(request: Request, allowed: tuple[str, ...], default: str) -> str:
    value = form_of(request).get("action", default)
    return value if value in allowed else default


def _check_files(request: Request, form, *, existing: int) -> list[attachments.Upload]:
    try:
        return attachments.check_uploads(
            form_of(request).getlist("attachments"), settings=settings_of(request), existing=existing
        )
    except ProposalError as exc:
        form.add_error(exc.field, str(exc))
        return []


@view
def create(request: Request, db: Session) -> Response:
    user = require(request, "proposals.create")
    settings = settings_of(request)
    if request.method == "GET":
        return _form_page(request, proposal_form(db, settings, initial={"district": user.district_id or ""}))
    form = proposal_form(db, settings, form_of(request))
    action = _action(request, CREATE_ACTIONS, "draft")
    if action == "preview":
        return _form_page(request, form, preview=preview_of(form))
    valid = form.is_valid()
    uploads = _check_files(request, form, existing=0)
    if not valid or form.errors:
        return _form_page(request, form, status=400)
    rate_limit(request, db, "post", f"user:{user.id}")
    proposal = lifecycle.create_proposal(db, author=user, data=data_from(form), publish=action == "publish")
    attachments.store(db, proposal=proposal, uploader=user, uploads=uploads, settings=settings)
    flash(
        request,
        _("Your proposal has been published.") if action == "publish" else _("Your draft has been saved."),
    )
    return redirect(f"/proposals/{proposal.id}")


@view
def preview(request: Request, db: Session) -> Response:
    """htmx: the rendered (sanitised) preview only; without htmx the whole form page with the preview."""
    require(request, "proposals.create")
    form = proposal_form(db, settings_of(request), form_of(request))
    if request.headers.get("hx-request") == "true":
        return render(request, "proposals/_preview.html", preview=preview_of(form))
    return _form_page(request, form, preview=preview_of(form))


@view
def edit(request: Request, db: Session) -> Response:
    proposal = load_proposal(request, db)
    user = require(request, "proposals.edit", proposal)
    settings = settings_of(request)
    files = attachments.list_for(db, proposal=proposal)
    if request.method == "GET":
        form = proposal_form(db, settings, initial=initial_from(proposal))
        return _form_page(request, form, proposal=proposal, files=files)
    form = proposal_form(db, settings, form_of(request))
    action = _action(request, EDIT_ACTIONS, "save")
    if action == "preview":
        return _form_page(request, form, proposal=proposal, files=files, preview=preview_of(form))
    valid = form.is_valid()
    uploads = _check_files(request, form, existing=len(files))
    if not valid or form.errors:
        return _form_page(request, form, proposal=proposal, files=files, status=400)
    rate_limit(request, db, "post", f"user:{user.id}")
    try:
        changed = lifecycle.update_proposal(db, proposal=proposal, editor=user, data=data_from(form))
        attachments.store(db, proposal=proposal, uploader=user, uploads=uploads, settings=settings)
        if action == "publish" and proposal.status == ProposalStatus.DRAFT:
            lifecycle.change_status(db, proposal=proposal, actor=user, to_status=ProposalStatus.PUBLISHED)
            flash(request, _("Your proposal has been published."))
        elif changed or uploads:
            flash(request, _("Your changes have been saved."))
    except ProposalError as exc:
        db.rollback()
        form.add_error(exc.field, str(exc))
        return _form_page(request, form, proposal=proposal, files=files, status=400)
    return redirect(f"/proposals/{proposal.id}")


@view
def detail(request: Request, db: Session) -> Response:
    proposal = load_proposal(request, db)
    viewer = current_user(request)
    theme, district, author = theme_and_district(db, proposal=proposal)
    context: dict[str, Any] = {
        "proposal": proposal,
        "theme": theme,
        "district": district,
        "author": author,
        "files": attachments.list_for(db, proposal=proposal),
        "history": lifecycle.status_history(db, proposal=proposal),
        "versions": lifecycle.versions(db, proposal=proposal),
        "supported": has_supported(db, proposal=proposal, user=viewer),
        "following": is_following(db, proposal=proposal, user=viewer),
        "staff_steps": lifecycle.allowed_steps(proposal, staff=True),
        "public_notes": annotations.notes_for(db, proposal_id=proposal.id),  # type: ignore[arg-type]
    }
    context.update(
        comments.thread_context(
            db, proposal=proposal, viewer=viewer, sort=request.query_params.get("sort", "oldest")
        )
    )
    return render(request, "proposals/detail.html", **context)


routes = [
    Route("/proposals", proposal_list, name="proposal_list"),
    Route("/proposals/new", create, methods=["GET", "POST"], name="proposal_new"),
    Route("/proposals/preview", preview, methods=["POST"], name="proposal_preview"),
    Route("/proposals/{proposal_id:int}", detail, name="proposal"),
    Route("/proposals/{proposal_id:int}/edit", edit, methods=["GET", "POST"], name="proposal_edit"),
]
