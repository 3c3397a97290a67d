"""Public audit endpoints and pages (mounted by app/main.py: ``routes``).

JSON under /api/v1 (read-only, open data, CORS; errors as ``{"error": {"code", "message"}}`` with 4xx):

* ``/api/v1/processes/{id}/log`` (``start``, ``limit``), ``/log/head``, ``/log/heads`` (``start``,
  ``limit``), ``/log/proof`` (``index``, ``size`` = a signed size, default the newest head),
  ``/log/consistency`` (``first``, ``second``), ``/audit-bundle`` (zip);
* the same for the platform log under ``/api/v1/log``…;
* the signing key at ``/.well-known/mitmachen-audit-key.pem`` and ``.json``.

The log holds ballots under random identifiers and people only as pseudonyms, so nothing here names a
voter (or a moderator). Pages: ``/audit/check`` ("check my ballot", works without JavaScript; htmx swaps
only the result) and ``/audit/actors`` (staff: who is behind the platform log's pseudonyms).
"""

from __future__ import annotations

import base64
import functools
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from app.database import new_session
from app.forms import FieldError, Form
from app.i18n import gettext as _
from app.permissions import is_staff, register, require
from app.ratelimit import check_and_hit
from app.web import client_ip, form_of, render, settings_of, view
from voting import audit, bundle, heads, keys, platform_log, receipts
from voting.models import Process

PREFIX = "/api/v1"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_NUMBER = 2**53 - 1
CORS = {"Access-Control-Allow-Origin": "*"}
CACHE = {"Cache-Control": "public, max-age=30"}
CHECK_LIMIT = (30, 600)  # "check my ballot" submissions per client address and 10 minutes
ACTORS_PAGE = 50

register("audit.actors", is_staff, "Staff: see who is behind the pseudonyms of the platform audit log")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> JSONResponse:
        return JSONResponse(
            {"error": {"code": self.code, "message": self.message}},
            status_code=self.status,
            headers={**CORS, "Cache-Control": "no-store"},
        )


def _not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


def _invalid(message: str) -> ApiError:
    return ApiError(400, "invalid_parameter", message)


Handler = Callable[[Request, Session, str], Any]


def api(*allowed: str) -> Callable[[Handler], Callable[[Request], Any]]:
    """Wrap ``handler(request, db, log_id)``: query parameters from ``allowed`` only, the log resolved from
    the path (404 for an unknown process), a read-only session in a worker thread, JSON out."""

    def decorate(handler: Handler) -> Callable[[Request], Any]:
        def run(request: Request) -> Response:
            try:
                for key in request.query_params:
                    if key not in allowed:
                        raise _invalid(
                            "Unknown query parameter. Allowed: " + (", ".join(allowed) or "none") + "."
                        )
                with new_session(request.app.state.engine) as db:
                    log_id = _log_of(request, db)
                    body = handler(request, db, log_id)
            except ApiError as exc:
                return exc.response()
            if isinstance(body, Response):
                return body
            return JSONResponse(body, headers={**CORS, **CACHE})

        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            return await run_in_threadpool(run, request)

        return endpoint

    return decorate


def _log_of(request: Request, db: Session) -> str:
    if "id" not in request.path_params:
        return audit.PLATFORM_LOG
    pid = request.path_params["id"]
    if not 1 <= pid <= 2**31 - 1 or db.get(Process, pid) is None:
        raise _not_found("No such process.")
    return audit.process_log(pid)


def _number(request: Request, name: str, default: int | None = None, *, minimum: int = 0) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if len(request.query_params.getlist(name)) > 1:
        raise _invalid(f"Query parameter '{name}' may be given only once.")
    if not re.fullmatch(r"[0-9]{1,16}", raw) or not minimum <= int(raw) <= MAX_NUMBER:
        raise _invalid(f"{name} must be a whole number of at least {minimum}.")
    return int(raw)


def _base(request: Request) -> str:
    return request.url.path.rsplit("/log", 1)[0] + "/log"


# --- JSON -----------------------------------------------------------------------------------------------


@api("start", "limit")
def log_entries(request: Request, db: Session, log_id: str) -> dict[str, Any]:
    start = _number(request, "start", 0)
    limit = _number(request, "limit", DEFAULT_LIMIT, minimum=1)
    assert start is not None and limit is not None
    if limit > MAX_LIMIT:
        raise _invalid(f"limit must be at most {MAX_LIMIT}.")
    size = audit.size(db, log_id)
    rows = audit.entries(db, log_id, start=start, limit=limit)
    last = rows[-1].idx if rows else None
    more = last is not None and last + 1 < size
    return {
        "log": log_id,
        "size": size,
        "start": start,
        "limit": limit,
        "entries": [
            {
                "index": row.idx,
                "leaf_hash": bytes(row.leaf_hash).hex(),
                "raw": base64.b64encode(bytes(row.entry)).decode("ascii"),
                "entry": audit.decode(bytes(row.entry)),
            }
            for row in rows
        ],
        "next": f"{request.url.path}?start={last + 1}&limit={limit}" if more else None,
    }


@api()
def log_head(request: Request, db: Session, log_id: str) -> dict[str, Any]:
    head = heads.latest_head(db, log_id)
    if head is None:
        raise _not_found("No signed tree head yet.")
    return heads.head_json(head)


@api("start", "limit")
def log_heads(request: Request, db: Session, log_id: str) -> dict[str, Any]:
    start = _number(request, "start", 0)
    limit = _number(request, "limit", DEFAULT_LIMIT, minimum=1)
    assert start is not None and limit is not None
    if limit > MAX_LIMIT:
        raise _invalid(f"limit must be at most {MAX_LIMIT}.")
    count = heads.count_heads(db, log_id)
    rows = heads.list_heads(db, log_id, start=start, limit=limit)
    more = start + len(rows) < count
    return {
        "log": log_id,
        "count": count,
        "heads": [heads.head_json(h) for h in rows],
        "next": f"{request.url.path}?start={start + len(rows)}&limit={limit}" if more else None,
    }


@api("index", "size")
def log_proof(request: Request, db: Session, log_id: str) -> dict[str, Any]:
    index = _number(request, "index")
    if index is None:
        raise _invalid("index is required.")
    size = _number(request, "size")
    head = heads.latest_head(db, log_id) if size is None else heads.head_of_size(db, log_id, size)
    if head is None:
        raise _not_found(
            "No signed tree head of this size." if size is not None else "No signed tree head yet."
        )
    if index >= head.size:
        raise _invalid(f"index must be smaller than the head's size ({head.size}).")
    entry = audit.entries(db, log_id, start=index, limit=1)[0]
    proof = audit.prove_inclusion(db, log_id, index, head.size)
    return {
        "log": log_id,
        "index": index,
        "size": head.size,
        "leaf_hash": bytes(entry.leaf_hash).hex(),
        "proof": [p.hex() for p in proof],
        "root": bytes(head.root).hex(),
        "head": heads.head_json(head),
    }


@api("first", "second")
def log_consistency(request: Request, db: Session, log_id: str) -> dict[str, Any]:
    first = _number(request, "first")
    if first is None:
        raise _invalid("first is required.")
    second = _number(request, "second")
    if second is None:
        latest = heads.latest_head(db, log_id)
        if latest is None:
            raise _not_found("No signed tree head yet.")
        second = int(latest.size)
    size = audit.size(db, log_id)
    if not first <= second <= size:
        raise _invalid(f"need first <= second <= {size} (the log's size).")
    proof = audit.prove_consistency(db, log_id, first, second)
    first_head, second_head = heads.head_of_size(db, log_id, first), heads.head_of_size(db, log_id, second)
    return {
        "log": log_id,
        "first": first,
        "second": second,
        "first_root": audit.root(db, log_id, first).hex(),
        "second_root": audit.root(db, log_id, second).hex(),
        "proof": [p.hex() for p in proof],
        "first_head": heads.head_json(first_head) if first_head else None,
        "second_head": heads.head_json(second_head) if second_head else None,
    }


def _bundle_file(request: Request, log_id: str) -> Path:
    """The zip of the newest head, built once per (log, size, number of heads, key) and cached on disk."""
    engine = request.app.state.engine
    settings = settings_of(request)
    key = keys.load_or_create(keys.key_path(settings))
    with new_session(engine, write=True) as db:
        try:
            bundle.prepare(db, log_id=log_id, key=key)
        except bundle.BundleError as exc:
            raise _not_found(str(exc)) from exc
        db.commit()
    with new_session(engine) as db:
        head = heads.latest_head(db, log_id)
        assert head is not None
        name = f"{log_id.replace(':', '-')}-{head.size}-{heads.count_heads(db, log_id)}-{key.key_id[:12]}.zip"
        cache = Path(settings.data_dir) / "audit-bundles"
        target = cache / name
        if target.exists():
            return target
        cache.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as fh:
                bundle.write_zip(db, log_id=log_id, target=fh, key=key)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return target


async def audit_bundle(request: Request) -> Response:
    if request.query_params:
        return _invalid("No query parameters are allowed.").response()

    def build() -> Response:
        try:
            with new_session(request.app.state.engine) as db:
                log_id = _log_of(request, db)
            path = _bundle_file(request, log_id)
        except ApiError as exc:
            return exc.response()
        return FileResponse(
            path,
            media_type="application/zip",
            filename=bundle.bundle_name(log_id),
            headers={**CORS, "Cache-Control": "public, max-age=60"},
        )

    return await run_in_threadpool(build)


async def key_pem(request: Request) -> Response:
    key = await run_in_threadpool(keys.load_or_create, keys.key_path(settings_of(request)))
    return Response(key.public_pem, media_type="application/x-pem-file", headers={**CORS, **CACHE})


async def key_json(request: Request) -> Response:
    key = await run_in_threadpool(keys.load_or_create, keys.key_path(settings_of(request)))
    return JSONResponse(keys.public_info(key), headers={**CORS, **CACHE})


# --- "check my ballot" ----------------------------------------------------------------------------------


class CheckForm(Form):
    fields = ("receipt", "ballot", "index")

    def clean_receipt(self, value: str) -> receipts.Receipt | None:
        if not value:
            return None
        try:
            return receipts.parse_receipt(value)
        except receipts.ReceiptError as exc:
            raise FieldError(receipt_message(exc.code)) from exc

    def clean_ballot(self, value: str) -> str:
        if value and not receipts.BALLOT_RE.match(value):
            raise FieldError(_("A ballot ID consists of 8 to 64 letters, digits, hyphens or underscores."))
        return value

    def clean_index(self, value: str) -> int | None:
        if not value:
            return None
        if not value.isdigit() or len(value) > 16:
            raise FieldError(_("The leaf index is a whole number (0, 1, 2, …)."))
        return int(value)

    def clean(self) -> None:
        if self.cleaned.get("receipt") is not None:
            return
        if not self.cleaned.get("ballot"):
            self.add_error(
                "ballot", _("Please paste your receipt, or enter the ballot ID and the leaf index.")
            )
        if self.cleaned.get("index") is None:
            self.add_error("index", _("Please enter the leaf index from your receipt."))

    def receipt(self) -> receipts.Receipt:
        if self.cleaned.get("receipt") is not None:
            return self.cleaned["receipt"]
        return receipts.Receipt(self.cleaned["ballot"], self.cleaned["index"])


def receipt_message(code: str) -> str:
    messages = {
        "too_long": _("This receipt is too long."),
        "not_json": _("This is not a receipt: please paste the whole receipt (it starts with “{”)."),
        "bad_ballot": _("The receipt's ballot ID is missing or malformed."),
        "bad_index": _("The receipt's leaf index is missing or malformed."),
        "bad_hash": _("The receipt's entry hash is malformed."),
        "bad_log": _("The receipt names an unknown log."),
        "bad_head": _("The receipt's tree head is malformed."),
    }
    return messages.get(code, _("This receipt cannot be read."))


NO_STORE = {"Cache-Control": "no-store"}


@view
def check_page(request: Request, db: Session) -> Response:
    key = keys.load_or_create(keys.key_path(settings_of(request)))
    if request.method == "GET":
        form = CheckForm()
        return render(
            request, "voting/audit_check.html", form=form, result=None, key_id=key.key_id, headers=NO_STORE
        )
    settings = settings_of(request)
    check_and_hit(
        db,
        [f"audit-check:ip:{client_ip(request)}"],
        limit=CHECK_LIMIT[0],
        window_seconds=CHECK_LIMIT[1],
        enabled=settings.rate_limit_enabled,
    )
    form = CheckForm(form_of(request))
    if not form.is_valid():
        return render(
            request,
            "voting/audit_check.html",
            400,  # the whole page with the field errors, for htmx too: the result partial needs a result
            form=form,
            result=None,
            key_id=key.key_id,
            headers=NO_STORE,
        )
    result = receipts.check_receipt(db, form.receipt(), key=key)
    statement = None
    if result.get("head"):
        h = result["head"]
        statement = heads.statement(
            log_id=h["log"], size=h["size"], root=bytes.fromhex(h["root"]), timestamp=h["timestamp"]
        ).decode()
    return render(
        request,
        "voting/audit_check.html",
        partial="voting/_audit_check_result.html",
        form=form,
        result=result,
        statement=statement,
        key_id=key.key_id,
        headers=NO_STORE,
    )


@view
def actors_page(request: Request, db: Session) -> Response:
    require(request, "audit.actors")
    raw = request.query_params.get("start", "0")
    if not re.fullmatch(r"[0-9]{1,12}", raw):
        raise HTTPException(400)
    start = int(raw)
    size = audit.size(db, audit.PLATFORM_LOG)
    rows = platform_log.staff_entries(db, start=start, limit=ACTORS_PAGE)
    return render(
        request,
        "voting/audit_actors.html",
        rows=rows,
        start=start,
        size=size,
        page=ACTORS_PAGE,
        headers=NO_STORE,
    )


def _both(path: str, endpoint: Callable, name: str) -> list[Route]:
    return [
        Route(f"{PREFIX}/processes/{{id:int}}{path}", endpoint, name=f"audit_process_{name}"),
        Route(f"{PREFIX}{path}", endpoint, name=f"audit_platform_{name}"),
    ]


routes = [
    *_both("/log", log_entries, "log"),
    *_both("/log/head", log_head, "head"),
    *_both("/log/heads", log_heads, "heads"),
    *_both("/log/proof", log_proof, "proof"),
    *_both("/log/consistency", log_consistency, "consistency"),
    Route(f"{PREFIX}/processes/{{id:int}}/audit-bundle", audit_bundle, name="audit_process_bundle"),
    Route(f"{PREFIX}/log/audit-bundle", audit_bundle, name="audit_platform_bundle"),
    Route("/.well-known/mitmachen-audit-key.pem", key_pem, name="audit_key_pem"),
    Route("/.well-known/mitmachen-audit-key.json", key_json, name="audit_key_json"),
    Route("/audit/check", check_page, methods=["GET", "POST"], name="audit_check"),
    Route("/audit/actors", actors_page, name="audit_actors"),
]
