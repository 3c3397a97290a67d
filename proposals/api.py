"""Read-only open-data JSON API under /api/v1/ (described by /api/v1/openapi.json, see docs/api.md).

Open data, no personal data: every query is built with the one visibility rule (``public_proposal()`` /
``public_comment()``: CVE-2024-27090, CVE-2026-40870); an author's display name is selected only when the
author consented (``is_name_public``), never an e-mail address or a user id. Query parameters come from an
allowlist per endpoint, are parsed and bounded, and reach SQL only as bound parameters (CVE-2023-34090,
CVE-2024-32469, CVE-2026-45376). Pagination is by keyset with an opaque, HMAC-signed cursor, so pages stay
stable while new proposals and comments arrive.

This module wraps and routes the endpoints; they live in proposals/api_queries.py, the request contract
(errors, parameters, cursors) in proposals/api_params.py. Their names stay importable from here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.settings import Settings
from proposals import api_schema
from proposals.api_params import (  # re-exported: the API's contract, importable from here as before
    CACHE,
    COMMENT_PARAMS,
    CORS,
    DEFAULT_LIMIT,
    MAX_ID,
    MAX_LIMIT,
    MAX_QUERY_LENGTH,
    NOT_FOUND,
    PREFIX,
    PREFLIGHT,
    PROPOSAL_PARAMS,
    PROPOSAL_SORTS,
    PUBLIC_STATUS_VALUES,
    ApiError,
    _b64,
    decode_cursor,
    encode_cursor,
    invalid,
    iso,
    parse_limit,
    path_id,
    query_params,
)
from proposals.api_queries import comments, districts, proposal, proposals, themes

__all__ = [
    "CACHE",
    "COMMENT_PARAMS",
    "CORS",
    "DEFAULT_LIMIT",
    "MAX_ID",
    "MAX_LIMIT",
    "MAX_QUERY_LENGTH",
    "NOT_FOUND",
    "PREFIX",
    "PREFLIGHT",
    "PROPOSAL_PARAMS",
    "PROPOSAL_SORTS",
    "PUBLIC_STATUS_VALUES",
    "ApiError",
    "_b64",
    "api_view",
    "comments",
    "decode_cursor",
    "districts",
    "encode_cursor",
    "invalid",
    "iso",
    "openapi",
    "parse_limit",
    "path_id",
    "proposal",
    "proposals",
    "query_params",
    "routes",
    "themes",
]

# --- the endpoint wrapper -------------------------------------------------------------------------------

Handler = Callable[[Request, Connection, Settings], Any]


def api_view(handler: Handler) -> Callable[[Request], Any]:
    """Run ``handler(request, conn, settings)`` in a worker thread on a read-only connection and answer
    its result as JSON with open-data CORS and caching headers. No user is loaded: the API is the same
    for everyone."""

    def run(request: Request) -> Response:
        engine = request.app.state.engine
        try:
            with engine.connect() as conn:
                body = handler(request, conn, request.app.state.settings)
        except ApiError as exc:
            return exc.response()
        return JSONResponse(body, headers={**CORS, **CACHE})

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        if request.method == "OPTIONS":
            return Response(status_code=204, headers={**CORS, **PREFLIGHT})
        return await run_in_threadpool(run, request)

    return endpoint


def openapi(request: Request, conn: Connection, settings: Settings) -> dict[str, Any]:
    query_params(request, ())
    return api_schema.document(settings.base_url)


METHODS = ["GET", "HEAD", "OPTIONS"]
routes = [
    Route(f"{PREFIX}/themes", api_view(themes), methods=METHODS, name="api_themes"),
    Route(f"{PREFIX}/districts", api_view(districts), methods=METHODS, name="api_districts"),
    Route(f"{PREFIX}/proposals", api_view(proposals), methods=METHODS, name="api_proposals"),
    Route(f"{PREFIX}/proposals/{{id:int}}", api_view(proposal), methods=METHODS, name="api_proposal"),
    Route(
        f"{PREFIX}/proposals/{{id:int}}/comments", api_view(comments), methods=METHODS, name="api_comments"
    ),
    Route(f"{PREFIX}/openapi.json", api_view(openapi), methods=METHODS, name="api_openapi"),
]
