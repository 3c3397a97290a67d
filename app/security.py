"""Passwords, signed tokens, CSRF protection and security headers.

CSRF is enforced in one place (``CSRFMiddleware``) for every unsafe method; no route can opt out.
A request passes when its Origin / Sec-Fetch-Site say same-origin (or are absent, as with old
browsers and non-browser clients) AND it carries the session's token, either in the ``X-CSRF-Token``
header (htmx sends it via ``hx-headers`` on <body>) or in the ``csrf_token`` form field.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any
from urllib.parse import urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
MAX_FORM_BYTES = 6 * 1024 * 1024

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Constant-ish time: a missing hash still costs one argon2 verification (no user enumeration)."""
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def password_needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)


def new_token(nbytes: int = 32) -> str:
    """A URL-safe random token from the OS CSPRNG (256 bits by default)."""
    return secrets.token_urlsafe(nbytes)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenError(ValueError):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason  # "expired" or "invalid"


def sign(secret_key: str, purpose: str, payload: Any) -> str:
    return URLSafeTimedSerializer(secret_key, salt=f"mitmachen.{purpose}").dumps(payload)


def unsign(secret_key: str, purpose: str, token: str, max_age_seconds: int) -> Any:
    try:
        return URLSafeTimedSerializer(secret_key, salt=f"mitmachen.{purpose}").loads(
            token, max_age=max_age_seconds
        )
    except SignatureExpired as exc:
        raise TokenError("expired") from exc
    except BadSignature as exc:
        raise TokenError("invalid") from exc


def csrf_token(session: dict) -> str:
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = new_token(24)
    return token


def _same_origin(headers: Headers) -> bool:
    site = headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = headers.get("origin")
    if origin is None:
        return True
    if origin == "null":
        return False
    return urlsplit(origin).netloc == headers.get("host", "")


MAX_FORM_FIELDS = 500  # a view refuses forms with more fields (400)
PARSED_FORM_KEY = "mitmachen.parsed_form"  # scope key: the url-encoded form the CSRF check already parsed


class CSRFMiddleware:
    """Rejects every unsafe request without a valid token with 403. Must run inside SessionMiddleware."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        expected = scope.get("session", {}).get("csrf")
        if not _same_origin(headers):
            await self._reject(scope, receive, send, "cross-site request")
            return
        # Every unsafe request body is read (at most MAX_FORM_BYTES) before anything else sees it, whichever
        # way the token travels, so an oversized upload is refused with 413 and never spooled to disk.
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_FORM_BYTES):
            await PlainTextResponse("Request too large", status_code=413)(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            await PlainTextResponse("Request too large", status_code=413)(scope, receive, send)
            return
        replay = _replay(body)
        supplied = headers.get("x-csrf-token")
        ctype = headers.get("content-type", "")
        if supplied is None and ctype.startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            form = await Request(scope, _replay(body)).form()
            supplied = form.get("csrf_token")
            if (
                ctype.startswith("application/x-www-form-urlencoded")
                and len(form.multi_items()) <= MAX_FORM_FIELDS
            ):
                scope[PARSED_FORM_KEY] = form  # no files in it: the view takes it instead of parsing again
            else:
                await form.close()
            if not isinstance(supplied, str):
                supplied = None
        if not expected or not supplied or not hmac.compare_digest(str(expected), supplied):
            await self._reject(scope, receive, send, "missing or invalid CSRF token")
            return
        await self.app(scope, replay, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send, why: str) -> None:
        handler = scope["app"].state.csrf_failure if "app" in scope else None
        if handler is not None:
            response = await handler(Request(scope, receive), why)
        else:  # pragma: no cover - app always sets one
            response = PlainTextResponse(f"Forbidden: {why}", status_code=403)
        await response(scope, receive, send)


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


def content_security_policy(nonce: str) -> str:
    return (
        "default-src 'self'; "
        f"script-src 'self' 'nonce-{nonce}'; "
        "style-src 'self'; "
        "img-src 'self' data:; "
        "font-src 'self'; "
        "connect-src 'self'; "
        "object-src 'none'; "
        "base-uri 'none'; "
        "form-action 'self'; "
        "frame-ancestors 'none'"
    )


class SecurityHeadersMiddleware:
    """Sets CSP (with a per-request nonce in scope['state']['csp_nonce']) and the other headers on every
    response, HSTS when served over https."""

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(16)
        scope.setdefault("state", {})["csp_nonce"] = nonce

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = list(message.get("headers", []))
                present = {k.lower() for k, _ in raw}

                def add(name: str, value: str) -> None:
                    if name.encode() not in present:
                        raw.append((name.encode(), value.encode()))

                add("content-security-policy", content_security_policy(nonce))
                add("x-content-type-options", "nosniff")
                add("referrer-policy", "same-origin")
                add("x-frame-options", "DENY")
                add("permissions-policy", "geolocation=(), camera=(), microphone=(), payment=()")
                add("cross-origin-opener-policy", "same-origin")
                if self.https:
                    add("strict-transport-security", "max-age=31536000; includeSubDomains")
                message["headers"] = raw
            await send(message)

        await self.app(scope, receive, send_with_headers)


def safe_next(target: str | None, default: str = "/") -> str:
    """Only relative paths on this site are accepted as redirect targets (ASVS V3.7.2)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target
