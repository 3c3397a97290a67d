"""A short-lived shared cache of anonymous HTML pages ("micro-caching"), one per worker process.

A city-wide announcement sends thousands of people to the same few pages within minutes; nearly all of
them are not signed in and see the same page. This middleware keeps each rendered anonymous page for a
few seconds (``PAGE_CACHE_SECONDS``, default 3; 0 turns it off) and answers the next visitors from
memory without touching the database or the templates.

What is cached, and for whom:

- only ``GET`` requests for HTML pages (not ``/static``, ``/healthz``) answered with 200, without
  ``Cache-Control: no-store/private`` and without cookies set by the application; and the open-data JSON
  under ``/api/`` that its handler declares ``Cache-Control: public`` (the same for everyone; it
  carries no token or nonce, so it is stored and served unchanged);
- only for visitors whose session holds nothing but the CSRF token (and the seed of the random list
  order): a signed-in session, a flash message, a sign-in in progress, anything else bypasses the cache,
  and so does a response whose rendering read per-visitor state (``mark_private()``, e.g. the "random"
  order, whose seed lives in the visitor's session);
- the key is host + path + query string + the locale (``lang`` cookie or the default) + every ``HX-*``
  request header (htmx partials), so a partial is never served for a full page and German never for English.

The two per-visitor parts of an anonymous page are the CSRF token (the language switch form and
``hx-headers`` on <body>) and the CSP nonce. While a page is rendered for the cache, ``base_context()``
puts per-process random placeholders in their place; the stored bytes keep the placeholders and every
answer, the first included, gets the visitor's own token (from, or newly created in, their session) and
this response's nonce substituted. So every visitor gets a valid token of their own session, and no
token or nonce is ever shared between visitors.

Staleness: an anonymous page is about ``PAGE_CACHE_SECONDS`` old at most (TTL only, no invalidation; below). Signed-in
people, who are the only ones who can change content, always see the live page. Memory: at most
``PAGE_CACHE_MAX_MB`` of page bodies per worker, least recently used first out; a page larger than
1/16 of that is not stored. Concurrent misses of the same key wait for the first render (single flight);
when a page has just expired, the visitor who comes first renders it again and everyone else gets the
previous copy meanwhile (stale while revalidate, for at most ``STALE_SECONDS`` = 10 s past expiry), so an
expiry never queues visitors behind one slow render. A page is therefore at most ``PAGE_CACHE_SECONDS`` + the
time of one render old.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SCOPE_KEY = "mitmachen.page_cache"  # the placeholders while a page is rendered for the cache
PRIVATE_KEY = "mitmachen.page_cache.private"  # set by mark_private(): never store this response
EXCLUDED_PREFIXES = ("/static/", "/healthz", "/readyz", "/metrics")
API_PREFIX = "/api/"
ANONYMOUS_SESSION_KEYS = frozenset({"csrf", "list_seed"})
ENTRY_OVERHEAD = 512  # bytes counted per entry besides the body (key, headers, bookkeeping)
WAIT_SECONDS = 5.0  # a concurrent miss waits at most this long for the first render
STALE_SECONDS = 10.0  # an expired page may still be served this long while it is being rendered again


@dataclass(frozen=True)
class Placeholders:
    csrf: str
    nonce: str

    @classmethod
    def new(cls) -> Placeholders:
        # Random per process: page content cannot contain them by accident or on purpose.
        return cls(csrf=f"pc{secrets.token_hex(16)}csrf", nonce=f"pc{secrets.token_hex(16)}nonce")


def placeholders(scope: Scope) -> Placeholders | None:
    """The placeholders to render instead of the CSRF token and nonce, when rendering for the cache."""
    return scope.get(SCOPE_KEY)


def mark_private(scope: Scope) -> None:
    """The response depends on per-visitor state (beyond the CSRF token and nonce): never cache it."""
    scope[PRIVATE_KEY] = True


@dataclass
class Entry:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    expires: float

    @property
    def size(self) -> int:
        return len(self.body) + ENTRY_OVERHEAD


class PageCache:
    """An LRU map with a time to live per entry and a bound on the bytes it holds."""

    def __init__(self, *, ttl: float, max_bytes: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self.max_bytes, self.clock = ttl, max_bytes, clock
        self._entries: OrderedDict[tuple, Entry] = OrderedDict()
        self.bytes = 0
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple, *, stale: bool = False) -> Entry | None:
        """The fresh entry; with ``stale=True`` also an expired one for up to ``STALE_SECONDS`` more."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        now = self.clock()
        if entry.expires + STALE_SECONDS <= now:
            self._remove(key)
            return None
        if entry.expires <= now and not stale:
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: tuple, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> bool:
        entry = Entry(status, headers, body, self.clock() + self.ttl)
        if entry.size > self.max_bytes // 16:
            return False
        if key in self._entries:
            self._remove(key)
        self._entries[key] = entry
        self.bytes += entry.size
        while self.bytes > self.max_bytes:
            self._remove(next(iter(self._entries)))
        return True

    def _remove(self, key: tuple) -> None:
        self.bytes -= self._entries.pop(key).size

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0


def _substitute(body: bytes, marks: Placeholders, csrf: str, nonce: str) -> bytes:
    return body.replace(marks.csrf.encode(), csrf.encode()).replace(marks.nonce.encode(), nonce.encode())


class PageCacheMiddleware:
    """Pure ASGI; must run inside SessionMiddleware and SecurityHeadersMiddleware (it needs the session and
    the request's CSP nonce)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        seconds: int,
        max_mb: int,
        default_locale: str,
        locales: Iterable[str],
        csrf_token: Callable[[dict], str],
    ) -> None:
        self.app = app
        self.cache = PageCache(ttl=seconds, max_bytes=max_mb * 1024 * 1024) if seconds > 0 else None
        self.default_locale = default_locale
        self.locales = frozenset(locales)
        self.csrf_token = csrf_token
        self.marks = Placeholders.new()
        self._inflight: dict[tuple, asyncio.Event] = {}

    def _key(self, scope: Scope) -> tuple:
        headers = Headers(scope=scope)
        lang = cookie_parser(headers.get("cookie", "")).get("lang")
        locale = lang if lang in self.locales else self.default_locale
        hx = tuple(sorted((k, v) for k, v in headers.items() if k.startswith("hx-")))
        return (headers.get("host", ""), scope["path"], scope.get("query_string", b""), locale, hx)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.cache is None
            or scope["type"] != "http"
            or scope["method"] != "GET"
            or scope["path"].startswith(EXCLUDED_PREFIXES)
        ):
            await self.app(scope, receive, send)
            return
        session = scope.get("session")
        if session is None or not ANONYMOUS_SESSION_KEYS.issuperset(session):
            await self.app(scope, receive, send)  # signed in, a flash message, a login in progress …
            return
        key = self._key(scope)
        entry = self.cache.get(key)
        if entry is None and key in self._inflight:
            # Being rendered again right now: the previous copy is served meanwhile (stale while
            # revalidate), so an expiry never makes a queue of visitors wait for one slow render.
            entry = self.cache.get(key, stale=True)
            if entry is not None:
                self.cache.hits += 1
                await self._answer(scope, send, entry.status, entry.headers, entry.body, b"stale")
                return
            try:  # the same page is being rendered right now: wait for it rather than render it again
                await asyncio.wait_for(self._inflight[key].wait(), WAIT_SECONDS)
            except TimeoutError:
                pass
            entry = self.cache.get(key)
        if entry is not None:
            self.cache.hits += 1
            await self._answer(scope, send, entry.status, entry.headers, entry.body, b"hit")
            return
        self.cache.misses += 1
        done = self._inflight.get(key)
        owner = done is None
        if done is None:
            done = self._inflight[key] = asyncio.Event()
        try:
            await self._render(scope, receive, send, key, session)
        finally:
            if owner:
                del self._inflight[key]
                done.set()

    async def _render(self, scope: Scope, receive: Receive, send: Send, key: tuple, session: dict) -> None:
        before = {k: v for k, v in session.items() if k != "csrf"}
        start: Message | None = None
        chunks: list[bytes] = []
        passthrough = False
        wanted = "application/json" if scope["path"].startswith(API_PREFIX) else "text/html"

        async def capture(message: Message) -> None:
            nonlocal start, passthrough
            if message["type"] == "http.response.start":
                headers = Headers(raw=message.get("headers", []))
                if headers.get("content-type", "").startswith(wanted):
                    start = message  # buffer: the placeholders must be replaced before anything is sent
                    return
                passthrough = True  # anything else (a download, an error): send as it comes
            if passthrough:
                await send(message)
                return
            if message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    await self._finish(scope, send, key, session, before, start, b"".join(chunks))

        scope[SCOPE_KEY] = self.marks
        try:
            await self.app(scope, receive, capture)
        finally:
            scope.pop(SCOPE_KEY, None)  # an error page rendered outside this middleware gets real values

    async def _finish(
        self,
        scope: Scope,
        send: Send,
        key: tuple,
        session: dict,
        before: dict,
        start: Message | None,
        body: bytes,
    ) -> None:
        assert start is not None
        status = start["status"]
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        names = Headers(raw=headers)
        storable = (
            status == 200
            and not scope.get(PRIVATE_KEY)
            and "set-cookie" not in names
            and not any(word in names.get("cache-control", "") for word in ("no-store", "private"))
            and (not scope["path"].startswith(API_PREFIX) or "public" in names.get("cache-control", ""))
            and ANONYMOUS_SESSION_KEYS.issuperset(session)
            and {k: v for k, v in session.items() if k != "csrf"} == before
        )
        if storable and self.cache is not None:
            self.cache.put(key, status, headers, body)
        await self._answer(scope, send, status, headers, body, b"miss" if storable else b"bypass")

    async def _answer(
        self,
        scope: Scope,
        send: Send,
        status: int,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        how: bytes,
    ) -> None:
        if not scope["path"].startswith(API_PREFIX):  # JSON holds no placeholders and needs no token
            nonce = scope.get("state", {}).get("csp_nonce", "")
            body = _substitute(body, self.marks, self.csrf_token(scope["session"]), nonce)
        raw = [*headers, (b"content-length", str(len(body)).encode()), (b"x-page-cache", how)]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})
