"""One pure ASGI middleware for every HTTP request: trusted forwarded headers, the request id, the access
log line, the request metrics, and delivery of the mail the request queued once the response is out.

* Forwarded headers (X-Forwarded-For, X-Forwarded-Proto, X-Request-ID) count only when the connection
  comes from an address in TRUSTED_PROXIES; then the client address is the right-most address in
  X-Forwarded-For that is not itself a trusted proxy. Everybody else's forwarded headers are ignored.
* The request id is the trusted proxy's X-Request-ID if it looks like one (letters, digits, ``._:-``,
  at most 64), otherwise a fresh random one; it is echoed as the ``X-Request-ID`` response header and
  attached to every log record of the request.
* An unhandled exception is answered here, by the app's error handler (``error_handler``), so the error
  page (HTML, or JSON under /api/) carries the ``X-Request-ID`` header and the logged traceback the request
  id: Starlette's own ServerErrorMiddleware sits outside every middleware, after the request's context is
  gone. The exception is then re-raised as before (servers log it, test clients may raise it); the handler
  registered for ServerErrorMiddleware is wrapped with ``unless_answered`` so it does not answer twice.
* Route labels are path templates (``/proposals/{proposal_id:int}``), never raw paths, so the metrics'
  cardinality stays bounded.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import metrics, outbox
from app.logging_setup import request_id_var

access_log = logging.getLogger("mitmachen.access")
log = logging.getLogger("mitmachen.observability")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_ANSWERED = "unhandled_error_answered"  # scope["state"] key: the error page has been sent

ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]


def unless_answered(handler: ErrorHandler) -> ErrorHandler:
    """Wrap the app's handler for ServerErrorMiddleware: an exception RequestContextMiddleware already
    answered (and logged) is not rendered or logged a second time."""

    async def outer_handler(request: Request, exc: Exception) -> Response:
        if request.scope.get("state", {}).get(_ANSWERED):
            return Response(status_code=500)  # never sent: the response has started
        return await handler(request, exc)

    return outer_handler


class TrustedProxies:
    def __init__(self, value: str) -> None:
        items = [v.strip() for v in value.split(",") if v.strip()]
        self.names = {
            v for v in items if not re.match(r"^[0-9A-Fa-f:.]+(/\d+)?$", v)
        }  # e.g. a unix socket peer
        self.networks = metrics.parse_networks(",".join(v for v in items if v not in self.names))

    def __bool__(self) -> bool:
        return bool(self.names or self.networks)

    def __contains__(self, host: str) -> bool:
        return host in self.names or metrics.address_in(host, self.networks)


def _header(scope: Scope, name: bytes) -> str | None:
    values = [v for k, v in scope.get("headers", []) if k == name]
    return b",".join(values).decode("latin-1") if values else None


def _route_label(app: Any, scope: Scope) -> str:
    """The path template of the route that handled the request (or ``<unmatched>``)."""
    matched = scope.get("route")  # set by Starlette's router for the route it dispatched to
    if matched is not None and hasattr(matched, "path"):
        return matched.path + "/{path}" if isinstance(matched, Mount) else matched.path
    router = getattr(app, "router", None)
    if router is None:
        return "<unmatched>"
    probe = {**scope, "path_params": {}}
    partial = None
    for route in router.routes:
        try:
            match, _child = route.matches(probe)
        except Exception:  # noqa: S112 - a route that cannot judge the scope simply does not match
            continue
        if match == Match.NONE:
            continue
        label = route.path + "/{path}" if isinstance(route, Mount) else getattr(route, "path", "<unmatched>")
        if match == Match.FULL:
            return label
        partial = partial or label
    return partial or "<unmatched>"


def _user_id(user: Any) -> int | None:
    """The signed-in user's id without touching the (possibly expired, detached) instance."""
    if user is None:
        return None
    try:
        from sqlalchemy import inspect

        identity = inspect(user).identity
        return identity[0] if identity else None
    except Exception:
        return None


class RequestContextMiddleware:
    def __init__(
        self, app: ASGIApp, *, trusted_proxies: str = "", error_handler: ErrorHandler | None = None
    ) -> None:
        self.app = app
        self.trusted = TrustedProxies(trusted_proxies)
        self.error_handler = error_handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        peer = scope["client"][0] if scope.get("client") else ""
        incoming_id = None
        if self.trusted and peer in self.trusted:
            self._apply_forwarded(scope)
            incoming_id = _header(scope, b"x-request-id")
        request_id = incoming_id if incoming_id and _REQUEST_ID.match(incoming_id) else secrets.token_hex(16)
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        reservation_cm = outbox.reserve()
        reservation = reservation_cm.__enter__()
        status = 500
        started = False
        start = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            try:
                await self.app(scope, receive, send_wrapper)
            except Exception as exc:
                if not started and self.error_handler is not None:
                    try:
                        response = await self.error_handler(Request(scope, receive), exc)
                        await response(scope, receive, send_wrapper)
                    except Exception:  # ServerErrorMiddleware answers then
                        log.exception("error page failed")
                    else:
                        scope["state"][_ANSWERED] = True
                raise
        finally:
            reservation_cm.__exit__(None, None, None)
            duration = time.perf_counter() - start
            self._record(scope, status, duration, request_id)
            request_id_var.reset(token)
        if reservation.committed:
            # The response is out; hand the request's mail to the SMTP server now (failures are retried
            # by the outbox loop and never reach the visitor).
            state = scope["app"].state
            token = request_id_var.set(request_id)
            try:
                await run_in_threadpool(outbox.deliver_reserved, state.engine, state.settings, reservation)
            except Exception:
                log.exception("mail delivery after the request failed; the outbox loop retries")
            finally:
                request_id_var.reset(token)

    def _apply_forwarded(self, scope: Scope) -> None:
        forwarded_for = _header(scope, b"x-forwarded-for")
        if forwarded_for:
            hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
            client = None
            for hop in reversed(hops):
                client = hop
                if hop not in self.trusted:
                    break
            if client:
                client = client.strip("[]") if client.startswith("[") else client
                scope["client"] = (client[:64], 0)
        proto = _header(scope, b"x-forwarded-proto")
        if proto:
            proto = proto.split(",")[-1].strip().lower()
            if proto in ("http", "https"):
                scope["scheme"] = proto

    def _record(self, scope: Scope, status: int, duration: float, request_id: str) -> None:
        app = scope.get("app")
        route = _route_label(app, scope) if app is not None else "<unmatched>"
        method = scope.get("method", "")
        if method not in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
            method = "OTHER"
        try:
            metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
            metrics.HTTP_LATENCY.labels(method, route).observe(duration)
        except Exception:  # metrics must never break a request
            log.warning("metrics not recorded", exc_info=True)
        state = scope.get("state", {})
        user = state.get("user")
        access_log.info(
            "%s %s %s %.1fms",
            method,
            scope.get("path", "").encode("unicode_escape").decode("ascii"),  # no line breaks in text logs
            status,
            duration * 1000,
            extra={
                "event": "http.request",
                "method": method,
                "path": scope.get("path", ""),
                "route": route,
                "status": status,
                "duration_ms": round(duration * 1000, 1),
                "user_id": _user_id(user),
                "ip": scope["client"][0] if scope.get("client") else None,
                "request_id": request_id,
            },
        )
