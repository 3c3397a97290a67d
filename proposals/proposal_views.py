"""Shared helpers of the proposal pages: loading a visible proposal, building forms and list contexts.

No SQL here: everything goes through the service modules."""

from __future__ import annotations

import secrets
from typing import Any

from sqlmodel import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request

from app import pagecache
from app.i18n import get_locale
from app.permissions import can_user
from app.sanitize import render_markdown
from app.settings import Settings
from app.web import settings_of
from proposals import listing, services
from proposals.forms import BODY_MAX, ProposalForm, format_cost_input
from proposals.lifecycle import ProposalData, ProposalNotFound, visible_proposal
from proposals.models import Proposal, Theme


def results_partial(request: Request) -> str | None:
    """The result-list partial for htmx filter requests; the full page when htmx restores history after
    a cache miss (it swaps the whole body then)."""
    if request.headers.get("hx-history-restore-request") == "true":
        return None
    return "proposals/_results.html"


LIST_HEADERS = {"Vary": "HX-Request, HX-History-Restore-Request"}


def current_user(request: Request):
    return getattr(request.state, "user", None)


def load_proposal(request: Request, db: Session) -> Proposal:
    """The proposal of the path if the viewer may see it; 404 otherwise (drafts of others, hidden)."""
    try:
        return visible_proposal(
            db, proposal_id=request.path_params["proposal_id"], viewer=current_user(request)
        )
    except ProposalNotFound as exc:
        raise HTTPException(404) from exc


def proposal_form(db: Session, settings: Settings, data=None, initial=None) -> ProposalForm:
    locale = get_locale()
    return ProposalForm(
        data,
        initial,
        themes=[(t.id, t.name(locale)) for t in services.themes(db)],
        districts=services.district_choices(db),
        bbox=settings.bbox,
    )


def initial_from(proposal: Proposal) -> dict[str, Any]:
    return {
        "title": proposal.title,
        "summary": proposal.summary,
        "body": proposal.body_md,
        "theme": proposal.theme_id,
        "district": proposal.district_id or "",
        "address": proposal.address,
        "lat": "" if proposal.lat is None else repr(proposal.lat),
        "lon": "" if proposal.lon is None else repr(proposal.lon),
        "cost": format_cost_input(proposal.cost_cents, get_locale()),
    }


def data_from(form: ProposalForm) -> ProposalData:
    return ProposalData(**form.cleaned)


def preview_of(form: ProposalForm) -> dict[str, Any]:
    """What the preview shows: the raw title and summary (escaped by the template) and the sanitised body."""

    def raw(name: str) -> str:
        value = form.data.get(name, "")
        return value.strip() if isinstance(value, str) else ""

    body = raw("body")
    return {
        "title": raw("title")[:140],
        "summary": raw("summary")[:500],
        "body_html": render_markdown(body) if len(body) <= BODY_MAX else "",
        "too_long": len(body) > BODY_MAX,
    }


def list_seed(request: Request) -> int:
    """A random seed per visitor, kept in the session, for the stable random order."""
    pagecache.mark_private(request.scope)  # the order is per visitor: never share this page
    seed = request.session.get("list_seed")
    if not isinstance(seed, int) or not 0 < seed < listing.RANDOM_P:
        seed = request.session["list_seed"] = secrets.randbelow(listing.RANDOM_P - 1) + 1
    return seed


def list_context(request: Request, db: Session, *, theme: Theme | None = None) -> dict[str, Any]:
    """Context for a list page (all proposals, or one theme's): filters, results, pagination."""
    user = current_user(request)
    all_themes = services.themes(db)
    districts = services.districts(db)
    query = listing.parse_query(
        request.query_params,
        theme_slugs={t.slug for t in all_themes},
        district_slugs={d.slug for d in districts},
        signed_in=user is not None,
        staff=can_user(user, "proposals.review"),
        theme=theme.slug if theme else "",
    )
    # The visitor's seed is only read (and first stored in the session) for the random order.
    seed = list_seed(request) if query.sort == "random" else 1
    result = listing.list_proposals(db, query=query, viewer=user, seed=seed)
    return {
        "result": result,
        "query": result.query,
        "themes": all_themes,
        "districts": districts,
        "status_filters": list(listing.STATUS_FILTERS),
        "sorts": list(listing.SORTS) + (["relevance"] if result.query.q else []),
        "fixed_theme": theme,
        "list_path": f"/themes/{theme.slug}" if theme else "/proposals",
        "upload_max_mb": settings_of(request).upload_max_mb,
    }
