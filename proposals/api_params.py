"""The open-data API's request contract (proposals/api.py): the error shape, the allowlisted and bounded
query parameters, the opaque HMAC-signed keyset cursors, timestamps and ``next`` links.

Query parameters come from an allowlist per endpoint, are parsed and bounded, and reach SQL only as bound
parameters (CVE-2023-34090, CVE-2024-32469, CVE-2026-45376).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse

from app.settings import Settings
from proposals import search
from proposals.models import PUBLIC_STATUSES

PREFIX = "/api/v1"
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_QUERY_LENGTH = search.MAX_QUERY
MAX_ID = 2**31 - 1  # ids beyond a 32-bit integer cannot exist; refusing them keeps SQL from overflowing
PUBLIC_STATUS_VALUES = tuple(s.value for s in PUBLIC_STATUSES)
PROPOSAL_SORTS = ("newest", "supported", "discussed")
PROPOSAL_PARAMS = ("theme", "district", "status", "q", "sort", "limit", "cursor")
COMMENT_PARAMS = ("limit", "cursor")
CORS = {"Access-Control-Allow-Origin": "*"}
CACHE = {"Cache-Control": "public, max-age=60"}
PREFLIGHT = {
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
    "Access-Control-Max-Age": "86400",
}


class ApiError(Exception):
    """An error answered as ``{"error": {"code", "message"[, "parameter"]}}`` with a 4xx status."""

    def __init__(self, status: int, code: str, message: str, parameter: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.parameter = status, code, message, parameter

    def response(self) -> JSONResponse:
        error: dict[str, str] = {"code": self.code, "message": self.message}
        if self.parameter:
            error["parameter"] = self.parameter
        return JSONResponse(
            {"error": error}, status_code=self.status, headers={**CORS, "Cache-Control": "no-store"}
        )


def invalid(parameter: str, message: str) -> ApiError:
    return ApiError(400, "invalid_parameter", message, parameter)


NOT_FOUND = ApiError(404, "not_found", "No such public proposal.")

# --- parameters and cursors -----------------------------------------------------------------------------


def query_params(request: Request, allowed: tuple[str, ...]) -> dict[str, str]:
    """The query parameters, each from the allowlist and given at most once; empty values count as absent."""
    out: dict[str, str] = {}
    seen: set[str] = set()
    for key, value in request.query_params.multi_items():
        if key not in allowed:
            raise ApiError(
                400,
                "invalid_parameter",
                "Unknown query parameter. Allowed: " + (", ".join(allowed) or "none") + ".",
            )
        if key in seen:
            raise invalid(key, f"Query parameter '{key}' may be given only once.")
        seen.add(key)
        if value != "":
            out[key] = value
    return out


def parse_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not re.fullmatch(r"[0-9]{1,4}", raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise invalid("limit", f"limit must be a whole number from 1 to {MAX_LIMIT}.")
    return int(raw)


def path_id(request: Request) -> int:
    value = request.path_params["id"]
    if not 1 <= value <= MAX_ID:
        raise NOT_FOUND
    return value


@functools.cache
def _cursor_key(secret_key: str) -> bytes:
    return hashlib.sha256(b"mitmachen.api.cursor\x00" + secret_key.encode()).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_cursor(settings: Settings, kind: str, key: Any, row_id: int) -> str:
    """``base64url(json [kind, key, id]) "." base64url(hmac)``: opaque to clients, checked on the way in."""
    body = _b64(json.dumps([kind, key, row_id], separators=(",", ":")).encode())
    mac = hmac.new(_cursor_key(settings.secret_key), body.encode(), hashlib.sha256).digest()[:16]
    return f"{body}.{_b64(mac)}"


def decode_cursor(settings: Settings, raw: str, kind: str) -> tuple[Any, int]:
    """The (sort key, id) of a cursor made by ``encode_cursor`` for ``kind``; 400 for anything else."""
    bad = invalid("cursor", "cursor is invalid; use the 'next' link of a previous response.")
    if len(raw) > 300 or not re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", raw):
        raise bad
    body, mac = raw.split(".")
    expected = hmac.new(_cursor_key(settings.secret_key), body.encode(), hashlib.sha256).digest()[:16]
    try:
        if not hmac.compare_digest(_unb64(mac), expected):
            raise bad
        value = json.loads(_unb64(body))
    except (binascii.Error, ValueError) as exc:
        raise bad from exc
    if not (isinstance(value, list) and len(value) == 3 and value[0] == kind):
        raise invalid("cursor", "cursor belongs to another sort order; start again without a cursor.")
    key, row_id = value[1], value[2]
    if not (isinstance(row_id, int) and 1 <= row_id <= MAX_ID):
        raise bad
    if kind in ("newest", "comments"):
        try:
            key = dt.datetime.fromisoformat(key)
        except (TypeError, ValueError) as exc:
            raise bad from exc
        if key.tzinfo is None:
            raise bad
    elif not (isinstance(key, int) and 0 <= key <= 2**53):
        raise bad
    return key, row_id


def iso(value: dt.datetime | None) -> str | None:
    """ISO 8601 in UTC to the second, e.g. ``2025-03-01T09:30:00Z``."""
    if value is None:
        return None
    if value.utcoffset():
        value = value.astimezone(dt.UTC)
    return value.isoformat(timespec="seconds")[:19] + "Z"


def _cursor_value(value: Any) -> Any:
    return value.astimezone(dt.UTC).isoformat() if isinstance(value, dt.datetime) else value


def _next_url(settings: Settings, path: str, params: Mapping[str, Any]) -> str:
    return (
        f"{settings.base_url}{PREFIX}{path}?{urlencode({k: v for k, v in params.items() if v is not None})}"
    )
