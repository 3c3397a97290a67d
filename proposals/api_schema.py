"""The OpenAPI 3.1 document of the open-data API (/api/v1/openapi.json), written as data.

The component schemas are strict (``additionalProperties: false``): tests/proposals/test_api.py validates
real responses against them, so a field that is added to a response without being documented (and
reviewed for personal data) fails the build. Other packages add their /api/v1 paths with ``extend``
from the composition root.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from proposals.models import PUBLIC_STATUSES

VERSION = "1.0.0"
TIMESTAMP = {
    "type": "string",
    "format": "date-time",
    "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$",
    "description": "ISO 8601 in UTC, to the second.",
}
NULLABLE_TIMESTAMP = {**TIMESTAMP, "type": ["string", "null"]}
URL = {"type": "string", "format": "uri", "pattern": "^https?://"}
STATUS = {"type": "string", "enum": [s.value for s in PUBLIC_STATUSES]}
COUNT = {"type": "integer", "minimum": 0}
ID = {"type": "integer", "minimum": 1}
AUTHOR = {
    "type": ["string", "null"],
    "description": "The author's display name if the author agreed to show it in open data; otherwise null.",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, Any], description: str = "") -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
    if description:
        schema["description"] = description
    return schema


def _page(item: str, description: str) -> dict[str, Any]:
    return _object(
        {
            "items": {"type": "array", "items": _ref(item)},
            "next": {
                "type": ["string", "null"],
                "description": "URL of the next page (same filters, with a cursor); null on the last page.",
            },
            "limit": {"type": "integer", "minimum": 1, "maximum": 100},
        },
        description,
    )


PROPOSAL_SUMMARY = {
    "id": ID,
    "url": {**URL, "description": "The proposal's page for people."},
    "api_url": {**URL, "description": "This proposal in the API."},
    "title": {"type": "string"},
    "summary": {"type": "string"},
    "theme": {"type": "string", "description": "Slug of the theme area (see /api/v1/themes)."},
    "district": {"type": ["string", "null"], "description": "Slug of the city district, if any."},
    "status": STATUS,
    "author": AUTHOR,
    "cost_cents": {
        "type": ["integer", "null"],
        "minimum": 0,
        "description": "Estimated cost in euro cents.",
    },
    "support_count": COUNT,
    "comment_count": COUNT,
    "published_at": NULLABLE_TIMESTAMP,
    "updated_at": TIMESTAMP,
}

SCHEMAS: dict[str, Any] = {
    "Error": _object(
        {
            "error": {
                "type": "object",
                "properties": {
                    "code": {
                        "type": "string",
                        "description": "Machine-readable: invalid_parameter, not_found, ...",
                    },
                    "message": {"type": "string"},
                    "parameter": {"type": "string", "description": "The query parameter at fault, if any."},
                },
                "required": ["code", "message"],
                "additionalProperties": False,
            }
        }
    ),
    "LocalizedText": _object({"de": {"type": "string"}, "en": {"type": "string"}}),
    "Theme": _object(
        {
            "id": ID,
            "slug": {"type": "string"},
            "name": _ref("LocalizedText"),
            "description": _ref("LocalizedText"),
            "active": {"type": "boolean", "description": "Inactive theme areas take no new proposals."},
            "proposal_count": {**COUNT, "description": "Public proposals in this theme area."},
            "url": URL,
            "proposals_url": URL,
        },
        "One of the city's theme areas.",
    ),
    "ThemeList": _object({"items": {"type": "array", "items": _ref("Theme")}}),
    "District": _object(
        {
            "id": ID,
            "slug": {"type": "string"},
            "name": {"type": "string"},
            "active": {"type": "boolean"},
            "proposal_count": {**COUNT, "description": "Public proposals in this district."},
            "proposals_url": URL,
        },
        "A city district.",
    ),
    "DistrictList": _object({"items": {"type": "array", "items": _ref("District")}}),
    "ProposalSummary": _object(PROPOSAL_SUMMARY, "A public proposal as listed."),
    "ProposalPage": _page("ProposalSummary", "One page of public proposals."),
    "StatusChange": _object(
        {
            "from": {"type": "string"},
            "to": {"type": "string"},
            "reason": {"type": ["string", "null"], "description": "The public reason, e.g. for a rejection."},
            "at": TIMESTAMP,
        },
        "One step of the proposal's lifecycle.",
    ),
    "Attachment": _object(
        {
            "id": ID,
            "name": {"type": "string", "description": "The file name given at upload."},
            "content_type": {"type": "string", "enum": ["application/pdf", "image/jpeg", "image/png"]},
            "size": {**COUNT, "description": "Bytes."},
            "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "created_at": TIMESTAMP,
            "download_url": URL,
        }
    ),
    "Proposal": _object(
        {
            **PROPOSAL_SUMMARY,
            "body_html": {"type": "string", "description": "The body, rendered from Markdown and sanitised."},
            "address": {"type": ["string", "null"]},
            "lat": {"type": ["number", "null"], "minimum": -90, "maximum": 90},
            "lon": {"type": ["number", "null"], "minimum": -180, "maximum": 180},
            "version": {"type": "integer", "minimum": 1},
            "created_at": TIMESTAMP,
            "decided_at": NULLABLE_TIMESTAMP,
            "implemented_at": NULLABLE_TIMESTAMP,
            "withdrawn_at": NULLABLE_TIMESTAMP,
            "status_history": {"type": "array", "items": _ref("StatusChange")},
            "attachments": {"type": "array", "items": _ref("Attachment")},
            "comments_url": URL,
        },
        "A public proposal with its body, status history and attachments.",
    ),
    "Comment": _object(
        {
            "id": ID,
            "parent_id": {"type": ["integer", "null"], "description": "The comment this one replies to."},
            "depth": {"type": "integer", "minimum": 0},
            "deleted": {"type": "boolean", "description": "Deleted by its author: body_html is null."},
            "body_html": {"type": ["string", "null"]},
            "score": {"type": "integer", "description": "Up-votes minus down-votes."},
            "created_at": TIMESTAMP,
            "edited_at": NULLABLE_TIMESTAMP,
            "author": AUTHOR,
        }
    ),
    "CommentPage": _page("Comment", "One page of a proposal's comments, oldest first."),
}


def _param(name: str, description: str, schema: dict[str, Any], where: str = "query") -> dict[str, Any]:
    param = {"name": name, "in": where, "description": description, "schema": schema}
    if where == "path":
        param["required"] = True
    return param


PARAMETERS = {
    "limit": _param(
        "limit", "Items per page.", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}
    ),
    "cursor": _param(
        "cursor",
        "Opaque position from the `next` link of the previous page; only valid with the same sort.",
        {"type": "string", "maxLength": 300},
    ),
    "theme": _param("theme", "Slug of a theme area.", {"type": "string"}),
    "district": _param("district", "Slug of a city district.", {"type": "string"}),
    "status": _param("status", "Only proposals with this status.", STATUS),
    "q": _param(
        "q",
        "Full-text search over title, summary and body (German stemming).",
        {"type": "string", "minLength": 1, "maxLength": 200},
    ),
    "sort": _param(
        "sort",
        "newest (published, newest first), supported (most supports first), discussed (most comments first).",
        {"type": "string", "enum": ["newest", "supported", "discussed"], "default": "newest"},
    ),
    "id": _param("id", "Proposal id.", {"type": "integer", "minimum": 1}, "path"),
}


def _params(*names: str) -> list[dict[str, str]]:
    return [{"$ref": f"#/components/parameters/{n}"} for n in names]


def _json(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


ERRORS_400 = {"400": _json("Error", "A query parameter is unknown, repeated or invalid.")}
ERRORS_404 = {"404": _json("Error", "No public proposal with this id.")}


def _get(summary: str, params: list, ok: dict, errors: dict, operation_id: str) -> dict[str, Any]:
    return {
        "get": {
            "operationId": operation_id,
            "summary": summary,
            "parameters": params,
            "responses": {"200": ok, **errors},
        }
    }


PATHS: dict[str, Any] = {
    "/api/v1/themes": _get(
        "The theme areas with their count of public proposals.",
        [],
        _json("ThemeList", "All theme areas, in the city's order."),
        ERRORS_400,
        "listThemes",
    ),
    "/api/v1/districts": _get(
        "The city districts with their count of public proposals.",
        [],
        _json("DistrictList", "All districts, in the city's order."),
        ERRORS_400,
        "listDistricts",
    ),
    "/api/v1/proposals": _get(
        "Public proposals, filtered, sorted and paginated by cursor.",
        _params("theme", "district", "status", "q", "sort", "limit", "cursor"),
        _json("ProposalPage", "One page of proposals."),
        ERRORS_400,
        "listProposals",
    ),
    "/api/v1/proposals/{id}": _get(
        "One public proposal.",
        _params("id"),
        _json("Proposal", "The proposal."),
        {**ERRORS_400, **ERRORS_404},
        "getProposal",
    ),
    "/api/v1/proposals/{id}/comments": _get(
        "The comments of a public proposal, oldest first, paginated by cursor.",
        _params("id", "limit", "cursor"),
        _json("CommentPage", "One page of comments."),
        {**ERRORS_400, **ERRORS_404},
        "listComments",
    ),
    "/api/v1/openapi.json": _get(
        "This document.",
        [],
        {"description": "The OpenAPI 3.1 document.", "content": {"application/json": {"schema": {}}}},
        ERRORS_400,
        "getOpenAPI",
    ),
}


def extend(paths: dict[str, Any], schemas: dict[str, Any] | None = None) -> None:
    """Add another package's /api/v1 paths (and component schemas) to the document."""
    schemas = schemas or {}
    # the same description again (every create_app() calls this) is fine; a different one is refused
    clash = {k for k, v in paths.items() if PATHS.get(k, v) != v} | {
        k for k, v in schemas.items() if SCHEMAS.get(k, v) != v
    }
    if clash:
        raise ValueError(f"already described: {sorted(clash)}")
    PATHS.update(paths)
    SCHEMAS.update(schemas)
    _cached.cache_clear()


@functools.cache
def _cached(base_url: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Mitmachen open data",
            "version": VERSION,
            "description": (
                "Read-only open data of the participation platform: theme areas, districts, public "
                "proposals and their comments. No personal data: no e-mail addresses or account ids; an "
                "author's display name only when the author agreed. Responses may be cached for 60 "
                "seconds; CORS is open. See docs/api.md."
            ),
        },
        "servers": [{"url": base_url}],
        "paths": copy.deepcopy(PATHS),
        "components": {"schemas": copy.deepcopy(SCHEMAS), "parameters": copy.deepcopy(PARAMETERS)},
    }


def document(base_url: str) -> dict[str, Any]:
    """The OpenAPI document for a deployment reachable at ``base_url``."""
    return _cached(base_url)
