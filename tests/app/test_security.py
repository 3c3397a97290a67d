"""Security baseline: CSRF on every unsafe route, security headers on every page type, cookies, escaping,
rate limits, redirects. Rows of SECURITY.md are named in the docstrings."""

from __future__ import annotations

import re

import pytest
from starlette.routing import Mount, Route

from app.models import User
from tests.conftest import PASSWORD, Client, query

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def _unsafe_routes(app) -> list[tuple[str, str]]:
    found = []
    for route in app.routes:
        if isinstance(route, Mount):
            continue
        assert isinstance(route, Route)
        path = re.sub(r"\{(\w+):int\}", "1", route.path)
        path = re.sub(r"\{(\w+)(:\w+)?\}", "x", path)
        for method in sorted((route.methods or set()) & UNSAFE):
            found.append((method, path))
    return found


def test_every_unsafe_route_rejects_missing_token(client, app, make_user, login):
    """CVE-2023-47635 / ASVS V3.5.1: no per-route opt-out; every unsafe method without a token → 403."""
    login(make_user("admin"))
    routes = _unsafe_routes(app)
    assert len(routes) >= 10
    for method, path in routes:
        response = client.request(method, path, data={"x": "1"})
        assert response.status_code == 403, (method, path, response.status_code)
        wrong = client.request(method, path, data={"csrf_token": "forged"})
        assert wrong.status_code == 403, (method, path)
        header = client.request(method, path, headers={"X-CSRF-Token": "forged"})
        assert header.status_code == 403, (method, path)


def test_cross_site_requests_rejected_even_with_token(client):
    """ASVS V3.5.3: a valid token from a cross-site context (Origin / Sec-Fetch-Site) is still refused."""
    token = client.csrf("/login")
    data = {"csrf_token": token, "email": "a@example.org", "password": "x"}
    assert client.post("/login", data=data, headers={"Origin": "https://evil.example"}).status_code == 403
    assert client.post("/login", data=data, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert client.post("/login", data=data, headers={"Origin": "http://testserver"}).status_code == 400


def test_htmx_header_token_accepted(client, make_user, login):
    """htmx requests carry the token in X-CSRF-Token (set by hx-headers on <body>)."""
    token = client.csrf("/login")
    assert f'"X-CSRF-Token": "{token}"' in client.get("/").text
    response = client.post("/language", data={"locale": "en", "next": "/"}, headers={"X-CSRF-Token": token})
    assert response.status_code == 303


def _check_headers(response) -> None:
    csp = response.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert (
        "'unsafe-inline'" not in directives["script-src"] and "'unsafe-eval'" not in directives["script-src"]
    )
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'" and directives["base-uri"] == "'none'"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"


def test_security_headers_on_every_page_type(client, make_user, login):
    """ASVS V3.4.3–V3.4.6: CSP without inline scripts, frame-ancestors, nosniff, Referrer-Policy on pages,
    partials, errors, redirects and static files."""
    pages = [
        client.get("/"),
        client.get("/login"),
        client.get("/register"),
        client.get("/pages/impressum"),
        client.get("/themes/mobilitaet-verkehr"),
        client.get("/does-not-exist"),
        client.get("/account"),  # redirect
        client.get("/static/css/site.css"),
        client.post("/logout"),  # CSRF rejection page
    ]
    login(make_user("admin"))
    pages += [client.get("/admin"), client.get("/admin/users", headers={"HX-Request": "true"})]
    login(make_user("resident"))
    pages.append(client.get("/admin"))  # 403
    statuses = {p.status_code for p in pages}
    assert {200, 303, 403, 404} <= statuses
    for response in pages:
        _check_headers(response)


def test_hsts_and_secure_cookie_over_https(db, smtp_settings):
    """ASVS V3.3.1/V3.4.1: https cookie is __Host-, Secure, HttpOnly, SameSite=Lax; HSTS set."""
    from app.main import create_app
    from tests.conftest import make_settings

    app = create_app(
        make_settings(db, base_url="https://mitmachen.example", **smtp_settings), engine=db.engine
    )
    with Client(app, base_url="https://mitmachen.example") as c:
        response = c.get("/login")
    assert response.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("__Host-session=")
    for flag in ("secure", "httponly", "samesite=lax", "path=/"):
        assert flag in cookie.lower()
    assert "domain=" not in cookie.lower()


def test_session_cookie_flags_over_http(client):
    """Cookies are HttpOnly and SameSite=Lax in development too."""
    cookie = client.get("/").headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie


def test_display_name_is_escaped_everywhere(client, db, make_user, login):
    """CVE-2026-23891: a display name with markup is shown as text in the header and the admin list."""
    evil = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    user = make_user(name=evil)
    login(user)
    page = client.get("/account").text
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    admin = make_user("admin")
    login(admin)
    listing = client.get("/admin/users").text
    assert "<img src=x" not in listing and "&lt;img src=x onerror=alert(2)&gt;" in listing


def test_open_redirects_refused(client, make_user):
    """consul #1630 / ASVS V3.7.2: next= only accepts relative paths."""
    user = make_user()
    for target in ("https://evil.example", "//evil.example", "/\\evil.example", "javascript:alert(1)"):
        client.cookies.clear()
        response = client.post_form("/login", {"email": user.email, "password": PASSWORD, "next": target})
        assert response.headers["location"] == "/", target
    response = client.post_form("/language", {"locale": "en", "next": "https://evil.example"})
    assert response.headers["location"] == "/"


def test_numeric_params_not_echoed(client, make_user, login):
    """CVE-2024-32469: numeric parameters are parsed, never echoed."""
    login(make_user("admin"))
    response = client.get('/admin/users?page="><script>alert(1)</script>')
    assert response.status_code == 200 and "<script>alert(1)" not in response.text


def test_search_like_wildcards_are_literal(client, make_user, login):
    """ASVS V1.2.4: the admin search binds its parameter; % and _ match literally."""
    login(make_user("admin", name="Ada"))
    make_user(name="Bert")
    assert "Bert" not in client.get("/admin/users?q=%25").text
    assert "Bert" in client.get("/admin/users?q=ber").text


@pytest.fixture
def settings_overrides():
    return {}


class TestRateLimits:
    """ASVS V2.4.1 / V6.3.1: rate limits on login, registration and mail sending, with a clear 429 page."""

    @pytest.fixture
    def settings_overrides(self):
        return {
            "rate_limit_enabled": True,
            "rate_limit_login": "3/900",
            "rate_limit_register": "2/3600",
            "rate_limit_mail": "2/3600",
        }

    def test_login_limited_per_account_and_ip(self, client, make_user):
        """Brute force against one account is stopped after the limit; the page says to wait."""
        user = make_user()
        for _ in range(3):
            assert (
                client.post_form("/login", {"email": user.email, "password": "wrong-password"}).status_code
                == 400
            )
        blocked = client.post_form("/login", {"email": user.email, "password": PASSWORD})
        assert blocked.status_code == 429 and "Retry-After" in blocked.headers
        assert "Zu viele Versuche" in blocked.text

    def test_register_limited(self, client, db):
        """Mass registration from one address is stopped, and nothing more is written."""
        for i in range(2):
            response = client.post_form(
                "/register",
                {
                    "email": f"r{i}@example.org",
                    "display_name": "Reg",
                    "password": PASSWORD,
                    "password2": PASSWORD,
                    "locale": "de",
                    "accept_rules": "on",
                },
            )
            assert response.status_code == 303
        blocked = client.post_form(
            "/register",
            {
                "email": "r9@example.org",
                "display_name": "Reg",
                "password": PASSWORD,
                "password2": PASSWORD,
                "locale": "de",
                "accept_rules": "on",
            },
        )
        assert blocked.status_code == 429
        assert query(db, User, User.email == "r9@example.org") == []

    def test_reset_mail_limited(self, client, mailbox, make_user):
        """Password-reset mails per address are capped (no mail bombing)."""
        user = make_user()
        for _ in range(2):
            assert client.post_form("/password/forgot", {"email": user.email}).status_code == 200
        assert client.post_form("/password/forgot", {"email": user.email}).status_code == 429
        assert len(mailbox.to(user.email)) == 2


def test_error_pages_are_generic(client):
    """ASVS V16.5.1: unknown pages get a translated 404 without internals; API paths get JSON errors."""
    response = client.get("/nope")
    assert response.status_code == 404 and "Seite nicht gefunden" in response.text
    api = client.get("/api/v1/nope")
    assert api.status_code == 404 and api.json()["error"]["code"] == "not_found"


def test_static_files_cached(client):
    """Versioned static URLs are immutable for a year; unversioned ones for an hour."""
    html = client.get("/").text
    url = re.search(r'src="(/static/vendor/htmx/htmx.min.js\?v=[0-9a-f]+)"', html).group(1)
    response = client.get(url)
    assert response.status_code == 200 and "immutable" in response.headers["cache-control"]
    assert client.get("/static/css/site.css").headers["cache-control"] == "public, max-age=3600"
    assert client.get("/static/../app/settings.py").status_code == 404


def test_oversized_bodies_refused_whatever_carries_the_token(client):
    """ASVS V5.2.1: every unsafe request over the cap gets 413 before it is parsed (form or header token)."""
    from app.security import MAX_FORM_BYTES

    token = client.csrf("/login")
    big = b"x" * (MAX_FORM_BYTES + 1)
    by_header = client.post(
        "/language", content=big, headers={"X-CSRF-Token": token, "Content-Type": "application/octet-stream"}
    )
    assert by_header.status_code == 413
    files = {"file": ("a.pdf", big, "application/pdf")}
    by_form = client.post("/language", data={"csrf_token": token}, files=files)
    assert by_form.status_code == 413


def test_huge_ids_in_paths_are_404(client, make_user, login):
    """An id beyond the database's integer range is a plain 404, never an overflow error (500)."""
    login(make_user("admin"))
    for path in ("/processes/99999999999999999999", "/proposals/123456789012", "/admin/themes/99999999999"):
        assert client.get(path).status_code == 404, path
