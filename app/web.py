"""The web layer shared by every package: templates, the per-request unit of work, rendering, errors.

A route is a plain function ``handler(request, db) -> Response`` wrapped by ``@view``: the form is
parsed first, then the handler runs (on the event loop's thread or a worker thread: ``_lane``) with its
own database session, the signed-in user and the locale set. The session commits once after the handler
returns and rolls back on any exception, so a change and its audit entry land together or not at all.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import weakref
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import anyio
import anyio.to_thread
import jinja2
from sqlalchemy import select
from sqlmodel import Session
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from app import i18n, pagecache
from app.database import new_session
from app.models import Page, User
from app.permissions import LoginRequired, can_user
from app.ratelimit import RateLimited
from app.security import MAX_FORM_FIELDS, PARSED_FORM_KEY, SAFE_METHODS, csrf_token
from app.sessions import defer_touch, load_user, touch_after
from app.settings import Settings
from app.templating import (  # noqa: F401 (re-exported: app.main and the tests import them from here)
    STATIC_DIR,
    TEMPLATES_DIR,
    CachedStaticFiles,
    make_templates,
    markdown_filter,
    static_url,
)

log = logging.getLogger("mitmachen.web")

Handler = Callable[[Request, Session], Response]
NO_STORE_PREFIXES = ("/account", "/admin", "/login", "/register", "/password")


@jinja2.pass_context
def _can(ctx, name: str, obj: Any = None) -> bool:
    return can_user(ctx.get("user"), name, obj)


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


def base_context(request: Request, db: Session | None) -> dict[str, Any]:
    state = request.app.state
    user: User | None = getattr(request.state, "user", None)
    pages: list[Page] = []
    if db is not None:
        pages = list(
            db.execute(select(Page).where(Page.in_footer).order_by(Page.position, Page.id)).scalars()
        )
    locale = i18n.get_locale()
    # Rendering for the shared page cache: placeholders that app/pagecache.py replaces per visitor.
    marks = pagecache.placeholders(request.scope)
    return {
        "request": request,
        "user": user,
        "locale": locale,
        "settings": state.settings,
        "csrf_token": marks.csrf if marks else csrf_token(request.session),
        "csp_nonce": marks.nonce if marks else request.scope.get("state", {}).get("csp_nonce", ""),
        "footer_pages": pages,
        "nav_items": state.nav_items,
        "can": _can,
        "current_path": request.url.path,
        "login_next": quote(request.url.path, safe="/"),
    }


def render(
    request: Request,
    template: str,
    status_code: int = 200,
    *,
    partial: str | None = None,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render a page, or only ``partial`` when htmx asked (``HX-Request``)."""
    db = getattr(request.state, "db", None)
    ctx = base_context(request, db)
    ctx.update(context)
    name = partial if partial and request.headers.get("hx-request") == "true" else template
    templates: Jinja2Templates = request.app.state.templates
    response = templates.TemplateResponse(request, name, ctx, status_code=status_code, headers=headers)
    if ctx["user"] is not None or request.url.path.startswith(NO_STORE_PREFIXES):
        response.headers["Cache-Control"] = "no-store"
    return response


def redirect(url: str, status_code: int = 303) -> RedirectResponse:
    return RedirectResponse(url, status_code=status_code)


def flash(request: Request, message: str, kind: str = "success") -> None:
    request.session.setdefault("flash", []).append({"message": message, "kind": kind})


def form_of(request: Request) -> FormData:
    return getattr(request.state, "form", None) or FormData()


def choose_locale(request: Request, user: User | None) -> str:
    if user is not None and user.locale in i18n.LOCALES:
        return user.locale
    cookie = request.cookies.get("lang")
    if cookie in i18n.LOCALES:
        return cookie
    return settings_of(request).default_locale


def error_page(
    request: Request, status_code: int, message: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    if request.url.path.startswith("/api/"):
        from starlette.responses import JSONResponse

        code = {
            400: "bad_request",
            403: "forbidden",
            404: "not_found",
            405: "method_not_allowed",
            429: "rate_limited",
            503: "unavailable",
        }.get(status_code, "error")
        return JSONResponse(
            {"error": {"code": code, "message": message or code.replace("_", " ")}},
            status_code=status_code,
            headers=headers,
        )
    return render(
        request, "errors/error.html", status_code, status=status_code, message=message, headers=headers
    )


# How long a visitor should wait before trying again when the database cannot be reached.
UNAVAILABLE_RETRY_AFTER = 30


def database_unavailable(exc: BaseException) -> bool:
    """True for the errors of a database that cannot be reached or cannot answer right now (connection
    refused or lost, pool exhausted, SQLite file unreadable or locked past the busy timeout): the request
    gets a 503 page instead of a traceback, and the next request tries again (pre-ping reconnects)."""
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError):
        return True
    return isinstance(exc, sa_exc.DBAPIError) and bool(exc.connection_invalidated)


def unavailable_page(request: Request, exc: BaseException | None = None) -> Response:
    """503 with Retry-After, rendered without the database (generic page; JSON error under /api/)."""
    log.warning(
        "database unavailable on %s %s: %s",
        request.method,
        request.url.path,
        type(exc).__name__ if exc is not None else "unknown",
    )
    request.state.db = None
    if getattr(request.state, "user", None) is None:
        request.state.user = None
        i18n.set_locale(choose_locale(request, None))
    message = i18n.gettext("The service is temporarily unavailable. Please try again in a few minutes.")
    headers = {"Retry-After": str(UNAVAILABLE_RETRY_AFTER), "Cache-Control": "no-store"}
    try:
        return error_page(request, 503, message, headers=headers)
    except Exception:  # the page itself failed: a plain answer, still without details
        log.exception("503 page failed")
        return HTMLResponse(
            "<!doctype html><title>503</title><h1>Service unavailable</h1>", status_code=503, headers=headers
        )


def _run(handler: Handler, request: Request, deferred_write: bool = False) -> Response:
    reading = request.method in SAFE_METHODS
    saved = dict(request.session) if reading and "session" in request.scope else None
    try:
        try:
            return _unit_of_work(handler, request, deferred_write)
        except Exception as exc:
            if not (reading and stale_snapshot(exc)):
                raise
            # A GET that writes (a mailed link, a sign-in through a provider) lost the race for SQLite's write
            # lock: everything was rolled back. Run it once more as a write from the start (the gate, then
            # BEGIN IMMEDIATE), with the session cookie's content as it came in.
            log.info(
                "read upgraded to a write on %s %s: running it again as a write",
                request.method,
                request.url.path,
            )
            if saved is not None:
                request.session.clear()
                request.session.update(saved)
            return _unit_of_work(handler, request, deferred_write, write=True)
    except Exception as exc:
        if not database_unavailable(exc):
            raise
        return unavailable_page(request, exc)


def stale_snapshot(exc: BaseException) -> bool:
    """SQLite refused a write inside a read transaction because another writer committed after the read
    began (SQLITE_BUSY_SNAPSHOT): waiting cannot help, starting again can."""
    import sqlite3

    orig = getattr(exc, "orig", None)
    return isinstance(orig, sqlite3.OperationalError) and getattr(orig, "sqlite_errorcode", None) == getattr(
        sqlite3, "SQLITE_BUSY_SNAPSHOT", 517
    )


def _unit_of_work(
    handler: Handler, request: Request, deferred_write: bool = False, *, write: bool = False
) -> Response:
    engine = request.app.state.engine
    reading = (request.method in SAFE_METHODS or deferred_write) and not write
    with new_session(engine, write=not reading) as db:
        request.state.db = db
        try:
            user = load_user(db, request.session, settings_of(request))
            touch = defer_touch(db) if reading else None
            request.state.user = user
            i18n.set_locale(choose_locale(request, user))
            try:
                response = handler(request, db)
            except LoginRequired:
                db.rollback()
                target = quote(
                    request.url.path + (f"?{request.url.query}" if request.url.query else ""), safe="/?=&"
                )
                response = redirect(f"/login?next={target}")
            except RateLimited as exc:
                db.rollback()
                response = error_page(
                    request,
                    429,
                    i18n.gettext(
                        "Too many attempts. Please wait %(minutes)s minutes and try again.",
                        minutes=max(1, exc.retry_after // 60),
                    ),
                    headers={"Retry-After": str(exc.retry_after)},
                )
            except HTTPException as exc:
                db.rollback()
                response = error_page(
                    request, exc.status_code, exc.detail if exc.status_code == 400 else None
                )
            db.commit()
            if touch is not None:
                touch_after(response, engine, *touch)
            return response
        except BaseException:
            try:
                db.rollback()
            except Exception:  # a lost connection cannot roll back; the original error matters
                log.debug("rollback failed", exc_info=True)
            raise
        finally:
            request.state.db = None


def view(handler: Handler | None = None, *, deferred_write: bool = False, long: bool = False) -> Any:
    """Wrap ``handler(request, db)`` as a Starlette endpoint running one unit of work.

    The unit of work of an unsafe method writes: on SQLite it takes the write lock at its start. With
    ``deferred_write=True`` it starts as a read and the handler calls ``app.database.begin_write(db)`` right
    before its first write, so the reads before it do not hold the lock (``@view(deferred_write=True)``).

    A worker runs its units of work one at a time on its event loop's own thread (``WEB_THREADS=1``, the
    default), or on a few threads of its own (``WEB_THREADS`` > 1) or anyio's shared pool (0); see ``_lane``.
    ``long=True`` marks a handler that may run for seconds (exports, imports of files): it always runs on
    the shared pool, so it never holds up the short requests of its worker."""
    if handler is None:
        return functools.partial(view, deferred_write=deferred_write, long=long)

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        if request.method not in SAFE_METHODS:
            parsed = request.scope.pop(PARSED_FORM_KEY, None)
            request.state.form = (
                parsed if parsed is not None else await request.form(max_files=10, max_fields=MAX_FORM_FIELDS)
            )
        return await _unit(request, functools.partial(_run, handler, request, deferred_write), long=long)

    return endpoint


INLINE = object()  # _lane's answer for WEB_THREADS=1: run on the event loop's thread


async def _unit(request: Request, work: Callable[[], Response], *, long: bool = False) -> Response:
    """Run the unit of work ``work`` where ``_lane`` says (``long``: always on the shared pool)."""
    lane = None if long else _lane(request)
    if lane is INLINE:
        return work()
    return await anyio.to_thread.run_sync(work, limiter=lane)


def _lane(request: Request) -> anyio.CapacityLimiter | object | None:
    """Where this worker runs a unit of work: ``INLINE`` on its event loop's own thread (``WEB_THREADS=1``,
    the default), a limiter of that many threads (2–64), or None for anyio's shared pool of 40 (0).

    Python runs one thread at a time (the GIL). Many threads taking turns cost CPU in switches and, worse,
    stretch every critical section: a unit of work holding SQLite's write lock, or a PostgreSQL row lock,
    waits for the GIL behind the others while everyone else waits for its lock. Measured with
    bench/load_ballots.py on 2 cores, 2 workers, 64 connections (SQLite): 40 threads 280 ballots/s, 2
    threads 402, 1 thread 440–505; PostgreSQL 178 → 307. So each worker runs its units of work one at a
    time, like a classic pre-fork server, and scales with ``--workers``.

    One thread of its own still cost a hand-off per request (a queue, two wake-ups) and the GIL's ping-pong
    between that thread and the event loop: running the unit of work on the loop's thread itself used 14 %
    less server CPU per ballot on PostgreSQL, 4 % on SQLite (medians; bench/README.md, stop 6). The loop
    then answers other connections (health checks, metrics, static files, cached pages) between units of
    work rather than during them; handlers marked ``long`` still run on the shared pool."""
    threads = settings_of(request).web_threads
    if threads <= 0:
        return None
    if threads == 1:
        return INLINE
    state = request.app.state
    lanes = getattr(state, "web_lanes", None)
    if lanes is None:
        lanes = state.web_lanes = weakref.WeakKeyDictionary()
    loop = asyncio.get_running_loop()  # a limiter belongs to one event loop (tests run several)
    lane = lanes.get(loop)
    if lane is None:
        lane = lanes[loop] = anyio.CapacityLimiter(threads)
    return lane


async def render_error(request: Request, exc: Exception) -> Response:
    """Exception handler for errors raised outside a view (no route, method not allowed, crashes)."""
    if database_unavailable(exc):
        return unavailable_page(request, exc)
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 500:
        log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)

    def handler(req: Request, db: Session) -> Response:
        return error_page(req, status)

    try:
        return await _unit(request, functools.partial(_run, handler, request))
    except Exception:  # the database may be what failed: answer without it
        log.exception("error page failed")
        return HTMLResponse("<!doctype html><title>Error</title><h1>Error</h1>", status_code=status)


async def csrf_failure_page(request: Request, why: str) -> Response:
    log.warning("csrf rejected %s %s: %s", request.method, request.url.path, why)
    i18n.set_locale(choose_locale(request, None))
    msg = i18n.gettext(
        "This form has expired or was sent from another site. Please reload the page and try again."
    )
    if request.url.path.startswith("/api/"):
        from starlette.responses import JSONResponse

        return JSONResponse({"error": {"code": "csrf", "message": msg}}, status_code=403)
    return render(request, "errors/error.html", 403, status=403, message=msg)


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def rate_limit(request: Request, db: Session, name: str, *account_keys: str) -> None:
    """Count one attempt of kind ``name`` (login, register, mail) per client IP and per account key."""
    from app.ratelimit import check_and_hit

    settings = settings_of(request)
    limit, window = settings.rate(name)
    keys = [f"{name}:ip:{client_ip(request)}"] + [f"{name}:acct:{k}" for k in account_keys if k]
    check_and_hit(db, keys, limit=limit, window_seconds=window, enabled=settings.rate_limit_enabled)
