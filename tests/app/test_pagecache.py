"""The shared page cache for anonymous visitors (app/pagecache.py): hits and misses, the per-visitor CSRF
token and CSP nonce substituted into cached bytes, bypasses (signed in, per-visitor pages, errors), locale and
htmx separation, expiry and the memory bound."""

from __future__ import annotations

import asyncio
import re

import pytest

from app.pagecache import STALE_SECONDS, PageCache, PageCacheMiddleware
from app.settings import Settings, SettingsError
from tests.conftest import Client
from tests.proposals.factories import make_proposal

NONCE = re.compile(r'nonce="([^"]+)"')
FORM_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
HEADER_TOKEN = re.compile(r'"X-CSRF-Token": "([^"]+)"')


@pytest.fixture
def settings_overrides() -> dict:
    return {"page_cache_seconds": 5, "page_cache_max_mb": 4}


@pytest.fixture
def visitor(app):
    """A factory of independent anonymous browsers (own cookie jars) on the same app."""
    clients: list[Client] = []

    def new() -> Client:
        c = Client(app, base_url="http://testserver", follow_redirects=False)
        c.__enter__()
        clients.append(c)
        return c

    yield new
    for c in clients:
        c.__exit__(None, None, None)


def middleware(app) -> PageCacheMiddleware:
    node = app.middleware_stack
    while not isinstance(node, PageCacheMiddleware):
        node = node.app
    return node


def tokens(response) -> tuple[str, str, str]:
    html = response.text
    form, header, nonce = FORM_TOKEN.search(html), HEADER_TOKEN.search(html), NONCE.search(html)
    assert form and header and nonce
    return form[1], header[1], nonce[1]


def no_placeholders(app, html: str) -> None:
    marks = middleware(app).marks
    assert marks.csrf not in html and marks.nonce not in html


def test_second_anonymous_visitor_is_served_from_the_cache(app, db, client, visitor, make_user):
    """A page is rendered once and then served from memory to the next visitors within the TTL."""
    first = client.get("/proposals")
    assert first.status_code == 200 and first.headers["x-page-cache"] == "miss"
    author = make_user()
    make_proposal(db, author, title="Brandneuer Vorschlag zum Cache")
    second = visitor().get("/proposals")
    assert second.status_code == 200 and second.headers["x-page-cache"] == "hit"
    assert "Brandneuer Vorschlag zum Cache" not in second.text  # stale within the TTL, as documented
    assert int(second.headers["content-length"]) == len(second.content)
    cache = middleware(app).cache
    assert cache is not None and cache.hits == 1 and cache.misses == 1
    # the bytes are the same page except for the visitor's token and nonce
    a, b = tokens(first), tokens(second)
    assert first.text.replace(a[0], "T").replace(a[2], "N") == second.text.replace(b[0], "T").replace(
        b[2], "N"
    )


def test_csrf_token_and_nonce_are_per_visitor_and_valid(app, client, visitor):
    """ASVS V3.5.1 / V3.4.3: a cached page carries each visitor's own CSRF token (form field and htmx header)
    and the response's own CSP nonce; no placeholder or other visitor's value leaks; the token works."""
    first = client.get("/")
    others = [visitor() for _ in range(2)]
    seen = {tokens(first)}
    for other in others:
        response = other.get("/")
        assert response.headers["x-page-cache"] == "hit"
        form, header, nonce = tokens(response)
        assert form == header
        assert f"'nonce-{nonce}'" in response.headers["content-security-policy"]
        assert all(nonce not in script for script in NONCE.findall(first.text))
        no_placeholders(app, response.text)
        seen.add((form, header, nonce))
    assert len({t[0] for t in seen}) == 3 and len({t[2] for t in seen}) == 3
    # the token from the cached page is the one in that visitor's session: posting with it works …
    cached = others[0]
    token = tokens(cached.get("/"))[0]
    ok = cached.post("/language", data={"csrf_token": token, "locale": "en", "next": "/"})
    assert ok.status_code == 303
    # … and another visitor's token does not
    forged = others[1].post("/language", data={"csrf_token": token, "locale": "en", "next": "/"})
    assert forged.status_code == 403


def test_a_returning_visitor_keeps_their_token(client, visitor):
    """A hit reuses the token already in the visitor's session (no new token per page view)."""
    visitor().get("/")  # fills the cache
    token = tokens(client.get("/"))[0]
    assert client.get("/").headers["x-page-cache"] == "hit"
    assert tokens(client.get("/"))[0] == token


def test_signed_in_people_bypass_the_cache(app, db, client, visitor, make_user, login):
    """Signed-in people always get the live page, never a cached one, and it is not stored."""
    visitor().get("/proposals")  # cached anonymous page
    user = make_user()
    login(user)
    make_proposal(db, user, title="Gerade eben eingereicht")
    response = client.get("/proposals")
    assert "x-page-cache" not in response.headers
    assert "Gerade eben eingereicht" in response.text
    assert response.headers["cache-control"] == "no-store"
    assert user.display_name in response.text
    assert user.display_name not in visitor().get("/proposals").text


def test_locales_are_cached_separately(client, visitor):
    german = client.get("/")
    assert german.headers["x-page-cache"] == "miss" and '<html lang="de">' in german.text
    english_visitor = visitor()
    english_visitor.cookies.set("lang", "en")
    english = english_visitor.get("/")
    assert english.headers["x-page-cache"] == "miss" and '<html lang="en">' in english.text
    assert english_visitor.get("/").headers["x-page-cache"] == "hit"
    assert '<html lang="de">' in visitor().get("/").text


def test_htmx_partials_and_full_pages_are_cached_separately(client, visitor):
    full = client.get("/proposals")
    partial = visitor().get("/proposals", headers={"HX-Request": "true"})
    assert partial.headers["x-page-cache"] == "miss"
    assert "<html" in full.text and "<html" not in partial.text
    assert "<html" in visitor().get("/proposals").text


def test_query_strings_are_part_of_the_key(client, visitor):
    client.get("/proposals?sort=supported")
    assert visitor().get("/proposals?sort=supported").headers["x-page-cache"] == "hit"
    assert visitor().get("/proposals?sort=discussed").headers["x-page-cache"] == "miss"


def test_the_random_order_is_never_shared(client, visitor):
    """The stable random order uses a seed in the visitor's session: such a page is private."""
    for c in (client, visitor()):
        response = c.get("/proposals?sort=random")
        assert response.status_code == 200 and response.headers["x-page-cache"] == "bypass"
        no_placeholders(client.app, response.text)
    # the plain list does not put a seed into the session, so it stays shareable
    fresh = visitor()
    fresh.get("/proposals")
    assert fresh.get("/proposals").headers["x-page-cache"] == "hit"


def test_error_pages_are_not_stored_and_carry_real_values(app, client):
    response = client.get("/proposals/999999")
    assert response.status_code == 404 and response.headers["x-page-cache"] == "bypass"
    no_placeholders(app, response.text)
    form, header, nonce = tokens(response)
    assert form == header and f"'nonce-{nonce}'" in response.headers["content-security-policy"]
    assert client.get("/proposals/999999").headers["x-page-cache"] == "bypass"


def test_non_html_and_excluded_paths_pass_through(client):
    assert "x-page-cache" not in client.get("/healthz").headers
    assert "x-page-cache" not in client.get("/readyz").headers
    assert "x-page-cache" not in client.head("/").headers
    assert "x-page-cache" not in client.get("/static/js/ballot.js").headers


def test_public_open_data_json_is_cached_unchanged_and_without_a_session(app, db, make_user, visitor):
    """The open-data API (Cache-Control: public) is the same for everyone: stored and served as it is,
    without a session cookie; its errors (no-store) and the API for signed-in people are not."""
    make_proposal(db, make_user(), title="Ein Vorschlag für den Cache")
    first = visitor().get("/api/v1/proposals")
    assert first.status_code == 200 and first.headers["x-page-cache"] == "miss"
    assert "set-cookie" not in first.headers
    second = visitor().get("/api/v1/proposals")
    assert second.headers["x-page-cache"] == "hit" and second.content == first.content
    assert second.headers["content-type"].startswith("application/json")
    assert second.json()["items"][0]["title"] == "Ein Vorschlag für den Cache"
    assert "set-cookie" not in second.headers
    assert int(second.headers["content-length"]) == len(second.content)
    # a different query string is a different entry
    assert visitor().get("/api/v1/proposals?limit=1").headers["x-page-cache"] == "miss"
    bad = visitor().get("/api/v1/proposals?limit=zero")
    assert bad.status_code == 400 and bad.headers["x-page-cache"] == "bypass"
    assert visitor().get("/api/v1/proposals?limit=zero").headers["x-page-cache"] == "bypass"


def test_entries_expire_after_the_ttl(app, client, visitor):
    client.get("/")
    cache = middleware(app).cache
    assert cache is not None
    now = [0.0]
    cache.clock = lambda: now[0]
    cache.clear()
    visitor().get("/")  # stored at t=0, expires at t=5
    now[0] = 4.9
    assert visitor().get("/").headers["x-page-cache"] == "hit"
    now[0] = 5.0
    assert visitor().get("/").headers["x-page-cache"] == "miss"


def test_an_expired_page_is_served_stale_while_it_is_rendered_again(app, client, visitor):
    """Stale while revalidate: while one request renders an expired page, the others get the previous copy
    (for at most STALE_SECONDS past expiry), never a queue behind the render."""
    client.get("/")
    mw = middleware(app)
    assert mw.cache is not None
    now = [0.0]
    mw.cache.clock = lambda: now[0]
    mw.cache.clear()
    visitor().get("/")  # stored at t=0, expires at t=5
    key = next(iter(mw.cache._entries))
    now[0] = 6.0
    mw._inflight[key] = asyncio.Event()  # another request is rendering it again right now
    try:
        stale = visitor().get("/")
        assert stale.headers["x-page-cache"] == "stale"
        no_placeholders(app, stale.text)
        assert f"'nonce-{tokens(stale)[2]}'" in stale.headers["content-security-policy"]
        now[0] = 5.0 + STALE_SECONDS  # too old even for that: this visitor waits for (or does) a render
        mw._inflight.pop(key)
        assert visitor().get("/").headers["x-page-cache"] == "miss"
    finally:
        mw._inflight.pop(key, None)


def test_memory_bound_and_lru_eviction():
    now = [0.0]
    cache = PageCache(ttl=10, max_bytes=16 * 4096, clock=lambda: now[0])
    body = b"x" * 3000  # 3000 + 512 bytes each: 18 fit in 64 KiB
    for i in range(30):
        assert cache.put(("k", i), 200, [], body)
        assert cache.bytes <= cache.max_bytes
    assert len(cache) == 18
    assert cache.get(("k", 0)) is None and cache.get(("k", 29)) is not None
    cache.get(("k", 12))  # recently used: survives the next insertions
    cache.put(("k", 30), 200, [], body)
    cache.put(("k", 31), 200, [], body)
    assert cache.get(("k", 12)) is not None and cache.get(("k", 13)) is None
    assert not cache.put(("big",), 200, [], b"x" * 5000)  # larger than 1/16 of the bound: not stored
    assert cache.get(("big",)) is None
    now[0] = 10.0
    assert cache.get(("k", 31)) is None
    assert cache.bytes == sum(e.size for e in cache._entries.values())


@pytest.mark.parametrize("settings_overrides", [{"page_cache_seconds": 0}])
def test_turned_off_with_zero(client):
    assert "x-page-cache" not in client.get("/").headers


@pytest.mark.parametrize(
    "values", [{"page_cache_seconds": -1}, {"page_cache_seconds": 61}, {"page_cache_max_mb": 0}]
)
def test_settings_are_validated(values):
    with pytest.raises(SettingsError):
        Settings(**values).validate()
    assert Settings.from_env({"PAGE_CACHE_SECONDS": "10"}).page_cache_seconds == 10
