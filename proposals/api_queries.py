"""The open-data API's endpoints (routed by proposals/api.py): each takes the request, a read-only
connection and the settings, and returns the JSON body.

Open data, no personal data: every query is built with the one visibility rule (``public_proposal()`` /
``public_comment()``: CVE-2024-27090, CVE-2026-40870); an author's display name is selected only when the
author consented (``is_name_public``), never an e-mail address or a user id. Pagination is by keyset, so
pages stay stable while new proposals and comments arrive.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection, and_, case, func, select
from sqlalchemy.orm import Session, aliased
from starlette.requests import Request

from app.models import User
from app.settings import Settings
from proposals import search
from proposals.api_params import (
    COMMENT_PARAMS,
    MAX_QUERY_LENGTH,
    NOT_FOUND,
    PREFIX,
    PROPOSAL_PARAMS,
    PROPOSAL_SORTS,
    PUBLIC_STATUS_VALUES,
    _cursor_value,
    _next_url,
    decode_cursor,
    encode_cursor,
    invalid,
    iso,
    parse_limit,
    path_id,
    query_params,
)
from proposals.models import Attachment, Comment, District, Proposal, ProposalStatusChange, Theme
from proposals.visibility import public_attachment, public_comment, public_proposal

# --- queries --------------------------------------------------------------------------------------------


def _author_name() -> Any:
    """The joined author's display name only with consent (and never of a deleted account); otherwise
    NULL. The name is chosen in SQL, so it never even reaches this process without consent."""
    return case(
        (and_(User.is_name_public.is_(True), User.deleted_at.is_(None)), User.display_name), else_=None
    )


def _summary_columns(p) -> list[Any]:
    """The list fields of proposal entity ``p`` (``Proposal`` or an alias of it)."""
    return [
        p.id,
        p.title,
        p.summary,
        Theme.slug.label("theme"),
        District.slug.label("district"),
        p.status,
        _author_name().label("author"),
        p.cost_cents,
        p.support_count,
        p.comment_count,
        p.published_at,
        p.updated_at,
    ]


# the proposal rows of a page, joined to the page's ids (made once: building an alias is costly)
_PAGE_PROPOSAL = aliased(Proposal, name="p")


def _joined(stmt, p):
    return (
        stmt.join(Theme, Theme.id == p.theme_id)
        .outerjoin(District, District.id == p.district_id)
        .join(User, User.id == p.author_id)
    )


def _proposal_summary(row, settings: Settings) -> dict[str, Any]:
    return {
        "id": row.id,
        "url": f"{settings.base_url}/proposals/{row.id}",
        "api_url": f"{settings.base_url}{PREFIX}/proposals/{row.id}",
        "title": row.title,
        "summary": row.summary,
        "theme": row.theme,
        "district": row.district,
        "status": row.status,
        "author": row.author,
        "cost_cents": row.cost_cents,
        "support_count": row.support_count,
        "comment_count": row.comment_count,
        "published_at": iso(row.published_at),
        "updated_at": iso(row.updated_at),
    }


def _sort_key(sort: str):
    if sort == "supported":
        return Proposal.support_count
    if sort == "discussed":
        return Proposal.comment_count
    return Proposal.published_at  # set when a proposal is published; every public status has it


def _public_counts(conn: Connection, column) -> dict[int, int]:
    stmt = select(column, func.count()).where(public_proposal(), column.is_not(None)).group_by(column)
    return {k: n for k, n in conn.execute(stmt)}


# --- handlers -------------------------------------------------------------------------------------------


def themes(request: Request, conn: Connection, settings: Settings) -> dict[str, Any]:
    query_params(request, ())
    counts = _public_counts(conn, Proposal.theme_id)
    rows = conn.execute(select(Theme).order_by(Theme.position, Theme.id)).all()
    return {
        "items": [
            {
                "id": t.id,
                "slug": t.slug,
                "name": {"de": t.name_de, "en": t.name_en},
                "description": {"de": t.description_de, "en": t.description_en},
                "active": t.is_active,
                "proposal_count": counts.get(t.id, 0),
                "url": f"{settings.base_url}/themes/{t.slug}",
                "proposals_url": _next_url(settings, "/proposals", {"theme": t.slug}),
            }
            for t in rows
        ]
    }


def districts(request: Request, conn: Connection, settings: Settings) -> dict[str, Any]:
    query_params(request, ())
    counts = _public_counts(conn, Proposal.district_id)
    rows = conn.execute(select(District).order_by(District.position, District.name, District.id)).all()
    return {
        "items": [
            {
                "id": d.id,
                "slug": d.slug,
                "name": d.name,
                "active": d.is_active,
                "proposal_count": counts.get(d.id, 0),
                "proposals_url": _next_url(settings, "/proposals", {"district": d.slug}),
            }
            for d in rows
        ]
    }


def _slug_id(conn: Connection, model, parameter: str, slug: str | None) -> int | None:
    if slug is None:
        return None
    found = None
    if re.fullmatch(r"[a-z0-9-]{1,64}", slug):
        found = conn.execute(select(model.id).where(model.slug == slug)).scalar_one_or_none()
    if found is None:
        raise invalid(parameter, f"{parameter} must be the slug of a {parameter}; see {PREFIX}/{parameter}s.")
    return found


def proposals(request: Request, conn: Connection, settings: Settings) -> dict[str, Any]:
    params = query_params(request, PROPOSAL_PARAMS)
    limit = parse_limit(params.get("limit"))
    sort = params.get("sort", "newest")
    if sort not in PROPOSAL_SORTS:
        raise invalid("sort", "sort must be one of: " + ", ".join(PROPOSAL_SORTS) + ".")
    status = params.get("status")
    if status is not None and status not in PUBLIC_STATUS_VALUES:
        raise invalid("status", "status must be one of: " + ", ".join(PUBLIC_STATUS_VALUES) + ".")
    q = " ".join(params.get("q", "").replace("\x00", " ").split()) or None  # blank: no filter; NUL: a space
    if q is not None and len(q) > MAX_QUERY_LENGTH:
        raise invalid("q", f"q must have at most {MAX_QUERY_LENGTH} characters.")
    theme_id = _slug_id(conn, Theme, "theme", params.get("theme"))
    district_id = _slug_id(conn, District, "district", params.get("district"))
    key = _sort_key(sort)

    # The page's ids come from a subquery on the proposal table alone (so an index can serve the visibility
    # rule, the filters, the order and the keyset); only those rows are then joined for their fields.
    ids = select(Proposal.id, key.label("sort_key")).where(public_proposal())
    if sort == "newest":
        # every public proposal has been published; saying so lets PostgreSQL skip the drafts' NULLs
        ids = ids.where(Proposal.published_at.is_not(None))
    if theme_id is not None:
        ids = ids.where(Proposal.theme_id == theme_id)
    if district_id is not None:
        ids = ids.where(Proposal.district_id == district_id)
    if status is not None:
        ids = ids.where(Proposal.status == status)
    if q:
        # the HTML list's full-text search (FTS5 / tsvector, German stemming); kept in the chosen sort order
        ids = search.apply(Session(bind=conn), ids, q).stmt
    if "cursor" in params:
        after_key, after_id = decode_cursor(settings, params["cursor"], sort)
        # a range on the sort key plus a tie-break, so an index on the key narrows the scan
        ids = ids.where(key <= after_key, (key < after_key) | (Proposal.id < after_id))
    page = ids.order_by(key.desc(), Proposal.id.desc()).limit(limit + 1).subquery("page")
    p = _PAGE_PROPOSAL
    stmt = _joined(select(*_summary_columns(p), page.c.sort_key).join_from(page, p, p.id == page.c.id), p)
    rows = conn.execute(stmt.order_by(page.c.sort_key.desc(), page.c.id.desc())).all()
    items = [_proposal_summary(r, settings) for r in rows[:limit]]

    next_url = None
    if len(rows) > limit:
        last = rows[limit - 1]
        cursor = encode_cursor(settings, sort, _cursor_value(last.sort_key), last.id)
        next_url = _next_url(
            settings,
            "/proposals",
            {
                "theme": params.get("theme"),
                "district": params.get("district"),
                "status": status,
                "q": q,
                "sort": sort if "sort" in params else None,
                "limit": limit if "limit" in params else None,
                "cursor": cursor,
            },
        )
    return {"items": items, "next": next_url, "limit": limit}


def proposal(request: Request, conn: Connection, settings: Settings) -> dict[str, Any]:
    query_params(request, ())
    proposal_id = path_id(request)
    detail = (
        Proposal.body_html,
        Proposal.address,
        Proposal.lat,
        Proposal.lon,
        Proposal.version,
        Proposal.created_at,
        Proposal.decided_at,
        Proposal.implemented_at,
        Proposal.withdrawn_at,
    )
    stmt = _joined(select(*_summary_columns(Proposal), *detail), Proposal)
    row = conn.execute(stmt.where(Proposal.id == proposal_id, public_proposal())).first()
    if row is None:
        raise NOT_FOUND
    history = conn.execute(
        select(ProposalStatusChange.from_status, ProposalStatusChange.to_status, ProposalStatusChange.reason)
        .add_columns(ProposalStatusChange.at)
        .where(ProposalStatusChange.proposal_id == proposal_id)
        .order_by(ProposalStatusChange.at, ProposalStatusChange.id)
    ).all()
    files = conn.execute(
        select(
            Attachment.id,
            Attachment.original_name,
            Attachment.content_type,
            Attachment.size,
            Attachment.sha256,
            Attachment.created_at,
        )
        .where(Attachment.proposal_id == proposal_id, public_attachment())
        .order_by(Attachment.id)
    ).all()
    base = f"{settings.base_url}/proposals/{proposal_id}"
    return {
        **_proposal_summary(row, settings),
        "body_html": row.body_html,
        "address": row.address or None,
        "lat": row.lat,
        "lon": row.lon,
        "version": row.version,
        "created_at": iso(row.created_at),
        "decided_at": iso(row.decided_at),
        "implemented_at": iso(row.implemented_at),
        "withdrawn_at": iso(row.withdrawn_at),
        "status_history": [
            {"from": h.from_status, "to": h.to_status, "reason": h.reason or None, "at": iso(h.at)}
            for h in history
        ],
        "attachments": [
            {
                "id": f.id,
                "name": f.original_name,
                "content_type": f.content_type,
                "size": f.size,
                "sha256": f.sha256,
                "created_at": iso(f.created_at),
                "download_url": f"{base}/attachments/{f.id}",
            }
            for f in files
        ],
        "comments_url": f"{settings.base_url}{PREFIX}/proposals/{proposal_id}/comments",
    }


def comments(request: Request, conn: Connection, settings: Settings) -> dict[str, Any]:
    params = query_params(request, COMMENT_PARAMS)
    limit = parse_limit(params.get("limit"))
    proposal_id = path_id(request)
    if conn.execute(select(Proposal.id).where(Proposal.id == proposal_id, public_proposal())).first() is None:
        raise NOT_FOUND
    deleted = Comment.deleted_at.is_not(None)
    stmt = (
        select(
            Comment.id,
            Comment.parent_id,
            Comment.depth,
            deleted.label("deleted"),
            case((deleted, None), else_=Comment.body_html).label("body_html"),
            Comment.score,
            Comment.created_at,
            Comment.edited_at,
            case((deleted, None), else_=_author_name()).label("author"),
        )
        .join(User, User.id == Comment.author_id)
        .where(Comment.proposal_id == proposal_id, public_comment())
    )
    if "cursor" in params:
        after_at, after_id = decode_cursor(settings, params["cursor"], "comments")
        stmt = stmt.where(
            Comment.created_at >= after_at, (Comment.created_at > after_at) | (Comment.id > after_id)
        )
    rows = conn.execute(stmt.order_by(Comment.created_at, Comment.id).limit(limit + 1)).all()
    next_url = None
    if len(rows) > limit:
        rows = rows[:limit]
        cursor = encode_cursor(settings, "comments", _cursor_value(rows[-1].created_at), rows[-1].id)
        next_url = _next_url(
            settings,
            f"/proposals/{proposal_id}/comments",
            {"limit": limit if "limit" in params else None, "cursor": cursor},
        )
    return {
        "items": [
            {
                "id": c.id,
                "parent_id": c.parent_id,
                "depth": c.depth,
                "deleted": bool(c.deleted),
                "body_html": c.body_html,
                "score": c.score,
                "created_at": iso(c.created_at),
                "edited_at": iso(c.edited_at),
                "author": c.author,
            }
            for c in rows
        ],
        "next": next_url,
        "limit": limit,
    }
