"""OpenID Connect sign-in against a real OpenID provider (panva/oidc-provider, tests/oidc_provider/server.js)
started on 127.0.0.1 for these tests: no mocked token endpoint. The provider's test-only "misbehave" switch
alters its real token responses to check that our client refuses them.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import socket
import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from itsdangerous import TimestampSigner

from app.accounts import oidc
from app.accounts.oidc_models import OidcIdentity
from app.models import User, UserSession
from app.settings import Settings, SettingsError
from tests.conftest import PASSWORD, query
from tests.oidc_provider.fixture import provider_login, start_provider

CALLBACKS = [f"http://testserver/login/oidc/{key}/callback" for key in ("test", "verified", "other")]


@pytest.fixture(scope="module")
def provider():
    p = start_provider(CALLBACKS)
    yield p
    p.stop()


@pytest.fixture
def oidc_provider(provider):
    provider.reset()
    oidc.clear_cache()
    yield provider
    provider.reset()


@pytest.fixture
def settings_overrides(oidc_provider) -> dict:
    return {
        "oidc_providers": json.dumps(
            [
                oidc_provider.config("test", "Test-ID"),
                oidc_provider.config(
                    "verified",
                    "ServiceKonto (Test)",
                    verified=True,
                    claims={"birth_date": "birthdate", "postal_code": "address.postal_code"},
                ),
            ]
        ),
        "oidc_timeout_seconds": 3,
    }


def begin(client, key: str = "test", next_url: str = "/") -> str:
    response = client.get(f"/login/oidc/{key}", params={"next": next_url})
    assert response.status_code == 302, response.text
    return response.headers["location"]


def sign_in_at_provider(client, provider, account: str, key: str = "test", next_url: str = "/") -> str:
    """Start at our site, sign in at the provider; our callback path with its query."""
    url = provider_login(provider, begin(client, key, next_url), account)
    parts = urlsplit(url)
    assert parts.path == f"/login/oidc/{key}/callback"
    return f"{parts.path}?{parts.query}"


def full_sign_in(client, provider, account: str, key: str = "test", next_url: str = "/"):
    return client.get(sign_in_at_provider(client, provider, account, key, next_url))


def signed_in_user(client) -> bool:
    return client.get("/account").status_code == 200


def session_of(client, secret: str) -> dict:
    raw = client.cookies.get("session")
    data = TimestampSigner(secret).unsign(raw.encode(), max_age=3600)
    return json.loads(base64.b64decode(data))


def write_session(client, secret: str, data: dict) -> None:
    value = TimestampSigner(secret).sign(base64.b64encode(json.dumps(data).encode())).decode()
    client.cookies.set("session", value, domain="testserver.local")


def identities(db):
    return query(db, OidcIdentity)


# --- sign-in, account creation, returning users -----------------------------------------------------------


def test_authorization_request_uses_pkce_s256_state_and_nonce(client, oidc_provider):
    """ASVS V10.1.2, V10.2.1: every authorization request carries a fresh state, a nonce and a PKCE S256
    challenge, all bound to the browser's session."""
    first = parse_qs(urlsplit(begin(client)).query)
    second = parse_qs(urlsplit(begin(client)).query)
    assert urlsplit(begin(client)).netloc == urlsplit(oidc_provider.issuer).netloc
    for params in (first, second):
        assert params["response_type"] == ["code"]
        assert params["code_challenge_method"] == ["S256"]
        assert len(params["code_challenge"][0]) == 43
        assert len(params["state"][0]) >= 40 and len(params["nonce"][0]) >= 40
        assert params["redirect_uri"] == ["http://testserver/login/oidc/test/callback"]
        assert "openid" in params["scope"][0].split()
    assert first["state"] != second["state"] and first["nonce"] != second["nonce"]
    assert first["code_challenge"] != second["code_challenge"]


def test_first_sign_in_creates_account_without_password(client, oidc_provider, db, mailbox):
    """ASVS V6.8.1: a new (issuer, sub) creates an account, signed in, with the provider's verified e-mail."""
    oidc_provider.set_account("anna", email="Anna@Example.org", email_verified=True, name="Anna Beispiel")
    response = full_sign_in(client, oidc_provider, "anna", next_url="/proposals")
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/proposals"
    assert signed_in_user(client)
    [user] = query(db, User, User.email == "anna@example.org")
    assert user.display_name == "Anna Beispiel"
    assert user.password_hash is None
    assert user.email_confirmed_at is not None
    [identity] = identities(db)
    assert (identity.issuer, identity.subject, identity.provider) == (oidc_provider.issuer, "anna", "test")
    assert identity.user_id == user.id
    assert mailbox.to("anna@example.org") == []
    page = client.get("/account").text
    assert "Test-ID" in page


def test_returning_sign_in_by_issuer_and_subject_even_after_email_change(
    client, oidc_provider, db, make_user
):
    """ASVS V6.8.1: identity = (issuer, sub), never the e-mail: a changed address at the provider still signs
    in the same account, and an account that owns the new address is not touched."""
    oidc_provider.set_account("bert", email="bert@example.org", email_verified=True)
    assert full_sign_in(client, oidc_provider, "bert").status_code == 303
    [user] = query(db, User, User.email == "bert@example.org")
    client.post_form("/logout")
    assert not signed_in_user(client)
    other = make_user(email="new-bert@example.org")
    oidc_provider.set_account("bert", email="new-bert@example.org", email_verified=True)
    response = full_sign_in(client, oidc_provider, "bert")
    assert response.status_code == 303
    sessions = query(db, UserSession)
    assert {s.user_id for s in sessions if s.revoked_at is None} == {user.id}
    assert other.id not in {s.user_id for s in sessions}
    assert len(query(db, User)) == 2
    [identity] = identities(db)
    assert identity.last_login_at is not None


def test_unverified_email_gives_unconfirmed_account_and_confirmation_mail(client, oidc_provider, db, mailbox):
    """A provider that does not assert email_verified: the address is kept but not confirmed until the owner
    opens the mailed link."""
    oidc_provider.set_account("carla", email="carla@example.org", email_verified=False)
    assert full_sign_in(client, oidc_provider, "carla").status_code == 303
    [user] = query(db, User, User.email == "carla@example.org")
    assert user.email_confirmed_at is None
    link = mailbox.link("carla@example.org", "/register/confirm")
    assert client.get(link).status_code == 303
    [user] = query(db, User, User.email == "carla@example.org")
    assert user.email_confirmed_at is not None


def test_login_and_register_pages_offer_the_providers(client, oidc_provider):
    for path in ("/login?next=/proposals", "/register"):
        page = client.get(path).text
        assert "Test-ID" in page and "ServiceKonto (Test)" in page
    assert 'href="/login/oidc/test?next=/proposals"' in client.get("/login?next=/proposals").text


# --- linking to an existing account -----------------------------------------------------------------------


def test_matching_email_does_not_sign_in_until_password_proves_the_account(
    client, oidc_provider, db, make_user
):
    """ASVS V6.8.1: an e-mail match never signs in by itself; the existing account must prove its password."""
    owner = make_user(email="dora@example.org")
    oidc_provider.set_account("dora-sub", email="dora@example.org", email_verified=True)
    response = full_sign_in(client, oidc_provider, "dora-sub")
    assert response.status_code == 303 and response.headers["location"] == "/login/oidc/connect"
    assert not signed_in_user(client)
    assert identities(db) == []
    page = client.get("/login/oidc/connect")
    assert page.status_code == 200 and "dora@example.org" in page.text
    wrong = client.post_form("/login/oidc/connect", {"password": "not the password"})
    assert wrong.status_code == 400
    assert identities(db) == [] and not signed_in_user(client)
    right = client.post_form("/login/oidc/connect", {"password": PASSWORD})
    assert right.status_code == 303, right.text
    assert signed_in_user(client)
    [identity] = identities(db)
    assert identity.user_id == owner.id and identity.subject == "dora-sub"
    assert len(query(db, User)) == 1
    client.post_form("/logout")
    assert full_sign_in(client, oidc_provider, "dora-sub").status_code == 303
    assert signed_in_user(client)


def test_matching_email_can_be_proven_by_mailed_link(client, oidc_provider, db, make_user, mailbox):
    """The owner of the existing account proves the mailbox; only opening the link connects the identity."""
    owner = make_user(email="emil@example.org")
    oidc_provider.set_account("emil-sub", email="emil@example.org", email_verified=True)
    assert full_sign_in(client, oidc_provider, "emil-sub").headers["location"] == "/login/oidc/connect"
    sent = client.post_form("/login/oidc/connect", {"action": "mail"})
    assert sent.status_code == 200
    assert identities(db) == [] and not signed_in_user(client)
    link = mailbox.link("emil@example.org", "/login/oidc/connect/confirm")
    assert client.get(link.replace("token=", "token=x")).status_code == 400
    assert identities(db) == []
    assert client.get(link).status_code == 303
    [identity] = identities(db)
    assert identity.user_id == owner.id
    assert full_sign_in(client, oidc_provider, "emil-sub").status_code == 303
    assert signed_in_user(client)


def test_connect_page_without_pending_sign_in(client, oidc_provider):
    assert client.get("/login/oidc/connect").status_code == 400


def test_link_and_unlink_from_the_account_page(client, oidc_provider, db, make_user, login):
    """A signed-in user connects a provider from the account page (a link bound to their session), and may
    disconnect it while another sign-in method remains."""
    user = make_user(email="fritz@example.org")
    login(user)
    page = client.get("/account").text
    assert 'id="signin-methods-h"' in page and "/account/oidc/test/link" in page
    forged = client.get("/account/oidc/test/link", params={"t": "forged"})
    assert forged.status_code == 303 and forged.headers["location"] == "/account"
    link = re.search(r'href="(/account/oidc/test/link\?t=[^"]+)"', page).group(1)
    oidc_provider.set_account("fritz-sub", email="other-address@example.org")
    start = client.get(link.replace("&amp;", "&"))
    assert start.status_code == 302
    callback = provider_login(oidc_provider, start.headers["location"], "fritz-sub")
    parts = urlsplit(callback)
    done = client.get(f"{parts.path}?{parts.query}")
    assert done.status_code == 303 and done.headers["location"] == "/account"
    [identity] = identities(db)
    assert identity.user_id == user.id
    # the password remains, so the provider may go
    response = client.post_form("/account/oidc/unlink", {"identity": str(identity.id)})
    assert response.status_code == 303
    assert identities(db) == []


def test_unlink_refused_for_the_only_sign_in_method(client, oidc_provider, db):
    """An account created through a provider has no password: its only identity cannot be removed, but one
    of two can."""
    oidc_provider.set_account("gina", email="gina@example.org")
    assert full_sign_in(client, oidc_provider, "gina").status_code == 303
    [identity] = identities(db)
    assert 'action="/account/oidc/unlink"' not in client.get("/account").text  # no button offered
    refused = client.post_form("/account/oidc/unlink", {"identity": str(identity.id)})
    assert refused.status_code == 303
    assert len(identities(db)) == 1
    # connect a second provider, then the first may go
    link = re.search(r'href="(/account/oidc/verified/link\?t=[^"]+)"', client.get("/account").text).group(1)
    start = client.get(link.replace("&amp;", "&"))
    callback = provider_login(oidc_provider, start.headers["location"], "gina-2")
    parts = urlsplit(callback)
    assert client.get(f"{parts.path}?{parts.query}").status_code == 303
    assert len(identities(db)) == 2
    assert client.post_form("/account/oidc/unlink", {"identity": str(identity.id)}).status_code == 303
    [left] = identities(db)
    assert left.provider == "verified"
    assert client.post_form("/account/oidc/unlink", {"identity": str(left.id)}).status_code == 303
    assert len(identities(db)) == 1


def test_identity_of_another_account_cannot_be_linked(client, oidc_provider, db, make_user, login):
    oidc_provider.set_account("hans", email="hans@example.org")
    assert full_sign_in(client, oidc_provider, "hans").status_code == 303
    client.post_form("/logout")
    other = make_user(email="ida@example.org")
    login(other)
    link = re.search(r'href="(/account/oidc/test/link\?t=[^"]+)"', client.get("/account").text).group(1)
    start = client.get(link.replace("&amp;", "&"))
    callback = provider_login(oidc_provider, start.headers["location"], "hans")
    parts = urlsplit(callback)
    refused = client.get(f"{parts.path}?{parts.query}")
    assert refused.status_code == 400 and 'data-reason="account"' in refused.text
    assert {i.user_id for i in identities(db)} != {other.id}
    assert len(identities(db)) == 1


def test_suspended_account_is_not_signed_in(client, oidc_provider, db):
    oidc_provider.set_account("ulla", email="ulla@example.org")
    assert full_sign_in(client, oidc_provider, "ulla").status_code == 303
    client.post_form("/logout")
    from app.database import new_session, utcnow

    with new_session(db.engine) as session:
        user = session.get(User, query(db, User)[0].id)
        user.suspended_until = utcnow() + dt.timedelta(days=3)
        session.commit()
    refused = full_sign_in(client, oidc_provider, "ulla")
    assert refused.status_code == 400 and 'data-reason="account"' in refused.text
    assert not signed_in_user(client)


def test_deleted_account_frees_its_identity(client, oidc_provider, db, make_user, login):
    """After the account behind an identity was deleted, the same (issuer, sub) starts a new account."""
    user = make_user(email="vera@example.org")
    login(user)
    link = re.search(r'href="(/account/oidc/test/link\?t=[^"]+)"', client.get("/account").text).group(1)
    start = client.get(link.replace("&amp;", "&"))
    parts = urlsplit(provider_login(oidc_provider, start.headers["location"], "vera-sub"))
    assert client.get(f"{parts.path}?{parts.query}").status_code == 303
    assert client.post_form("/account/delete", {"password": PASSWORD, "confirm": "on"}).status_code == 303
    oidc_provider.set_account("vera-sub", email="vera-new@example.org")
    assert full_sign_in(client, oidc_provider, "vera-sub").status_code == 303
    [identity] = identities(db)
    [fresh] = query(db, User, User.email == "vera-new@example.org")
    assert identity.user_id == fresh.id != user.id


# --- resident verification --------------------------------------------------------------------------------


def test_verified_provider_records_birth_date_and_postal_code(client, oidc_provider, db):
    """A provider marked identity-verified vouches for birth date and postal code (method oidc:<key>); a
    second sign-in with the same data records no second verification."""
    from app.accounts.verification import ResidentVerification

    oidc_provider.set_account(
        "jana", email="jana@example.org", birthdate="2001-04-05", address={"postal_code": "42103"}
    )
    assert full_sign_in(client, oidc_provider, "jana", key="verified").status_code == 303
    [user] = query(db, User, User.email == "jana@example.org")
    assert user.resident_verification_method == "oidc:verified"
    assert str(user.verified_birth_date) == "2001-04-05" and user.verified_postal_code == "42103"
    assert len(query(db, ResidentVerification)) == 1
    client.post_form("/logout")
    assert full_sign_in(client, oidc_provider, "jana", key="verified").status_code == 303
    assert len(query(db, ResidentVerification)) == 1
    # the unverified provider gives no verification
    oidc_provider.set_account(
        "kai", email="kai@example.org", birthdate="2001-04-05", address={"postal_code": "42103"}
    )
    client.post_form("/logout")
    assert full_sign_in(client, oidc_provider, "kai", key="test").status_code == 303
    [kai] = query(db, User, User.email == "kai@example.org")
    assert kai.resident_verified_at is None


# --- bad input ------------------------------------------------------------------------------------------


def assert_nothing_happened(client, db, response, reason: str, status: int = 400) -> None:
    """The error page names ``reason``; no account, identity or session was written; nobody is signed in."""
    assert response.status_code == status, response.text
    assert f'data-reason="{reason}"' in response.text, response.text
    assert query(db, User) == [] and identities(db) == [] and query(db, UserSession) == []
    assert not signed_in_user(client)


def test_wrong_state_is_refused(client, oidc_provider, db):
    """ASVS V10.1.2: the callback's state must be the one this browser's session started."""
    callback = sign_in_at_provider(client, oidc_provider, "lena")
    tampered = callback.replace("state=", "state=x")
    assert_nothing_happened(client, db, client.get(tampered), "state")


def test_callback_in_another_browser_is_refused(client, app, oidc_provider, db):
    """ASVS V10.1.2: the state is bound to the session that started the flow (login CSRF)."""
    from starlette.testclient import TestClient

    callback = sign_in_at_provider(client, oidc_provider, "mona")
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as other:
        response = other.get(callback)
    assert_nothing_happened(client, db, response, "state")


def test_replayed_callback_and_replayed_code_are_refused(client, oidc_provider, db):
    """ASVS V10.2.1: a callback works once; a used code sent again with a fresh state is refused by the
    provider, and nothing happens here."""
    callback = sign_in_at_provider(client, oidc_provider, "nina")
    assert client.get(callback).status_code == 303
    sessions = len(query(db, UserSession))
    replay = client.get(callback)
    assert replay.status_code == 400 and 'data-reason="state"' in replay.text
    code = parse_qs(urlsplit(callback).query)["code"][0]
    fresh = parse_qs(urlsplit(begin(client)).query)["state"][0]
    reused = client.get(
        "/login/oidc/test/callback", params={"code": code, "state": fresh, "iss": oidc_provider.issuer}
    )
    assert reused.status_code == 400 and 'data-reason="code"' in reused.text
    assert len(query(db, UserSession)) == sessions and len(query(db, User)) == 1


def test_expired_code_is_refused(client, oidc_provider, db):
    """ASVS V10.2.1: an authorization code past its lifetime (1 s for this test account) is refused."""
    callback = sign_in_at_provider(client, oidc_provider, "slow-code-olga")
    time.sleep(2.2)
    assert_nothing_happened(client, db, client.get(callback), "code")


def test_mismatched_nonce_in_session_is_refused(client, oidc_provider, db, app):
    """ASVS V10.5.1 / V10.5.2: the ID token's nonce must be the one kept in this session."""
    callback = sign_in_at_provider(client, oidc_provider, "paul")
    secret = app.state.settings.secret_key
    data = session_of(client, secret)
    for flow in data["oidc_flows"].values():
        flow["n"] = "a-nonce-we-never-sent"
    write_session(client, secret, data)
    assert_nothing_happened(client, db, client.get(callback), "token")


@pytest.mark.parametrize(
    "mode",
    ["nonce", "aud", "iss", "expired", "signature", "userinfo_sub"],
)
def test_id_token_checks(client, oidc_provider, db, mode):
    """ASVS V10.5.1, V10.5.2, V10.5.4: the provider's real token response altered on purpose: another nonce,
    a foreign audience (aud), a foreign issuer (iss), exp beyond the clock-skew leeway, a forged signature,
    and a UserInfo answer about another subject (sub) are each refused with nothing created."""
    callback = sign_in_at_provider(client, oidc_provider, f"quirin-{mode}")
    oidc_provider.misbehave(mode)
    assert_nothing_happened(client, db, client.get(callback), "token")


def test_clock_skew_leeway_is_bounded(client, oidc_provider, db):
    """An ID token that expired 20 s ago passes with the configured 60 s leeway (clock skew), one that expired
    30 minutes ago does not (test_id_token_checks[expired])."""
    callback = sign_in_at_provider(client, oidc_provider, "rosa")
    oidc_provider.misbehave("skewed")
    assert client.get(callback).status_code == 303


def test_clock_skew_setting_is_bounded():
    with pytest.raises(SettingsError, match="OIDC_CLOCK_SKEW_SECONDS"):
        Settings(oidc_clock_skew_seconds=3600).validate()


def test_authorization_response_iss_must_match(client, oidc_provider, db):
    """RFC 9207 (mix-up defence; ASVS V10.5.4): the callback's iss must name the configured issuer."""
    callback = sign_in_at_provider(client, oidc_provider, "sven")
    tampered = callback.replace("iss=", "iss=https%3A%2F%2Fevil.example%2F&x=")
    assert_nothing_happened(client, db, client.get(tampered), "token")


def test_provider_error_response_gives_clear_page(client, oidc_provider, db):
    """The person cancels at the provider: the provider's error comes back, a clear page, no account."""
    url = provider_login(oidc_provider, begin(client), "tina", abort=True)
    parts = urlsplit(url)
    assert "error=access_denied" in parts.query
    response = client.get(f"{parts.path}?{parts.query}")
    assert_nothing_happened(client, db, response, "denied")


def test_unknown_provider_key_is_404(client, oidc_provider):
    assert client.get("/login/oidc/nope").status_code == 404
    assert client.get("/login/oidc/nope/callback?code=x&state=y").status_code == 404


# --- providers that are down, slow, or not who they claim ------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def app_with_provider(db, smtp_settings, issuer: str, timeout: int = 1):
    from app.main import create_app
    from tests.conftest import Client, make_settings

    entry = {"key": "down", "name": "Down-ID", "issuer": issuer, "client_id": "x", "client_secret": "y"}
    settings = make_settings(
        db, oidc_providers=json.dumps([entry]), oidc_timeout_seconds=timeout, **smtp_settings
    )
    return Client(
        create_app(settings, engine=db.engine), base_url="http://testserver", follow_redirects=False
    )


def test_provider_down_gives_friendly_page(db, smtp_settings):
    """A provider that is down (closed port): 503 with a clear message, no account, no session change."""
    oidc.clear_cache()
    with app_with_provider(db, smtp_settings, f"http://127.0.0.1:{free_port()}") as client:
        response = client.get("/login/oidc/down")
        assert_nothing_happened(client, db, response, "unavailable", 503)
        if client.cookies.get("session"):
            assert not session_of(client, client.app.state.settings.secret_key).get("oidc_flows")


def test_provider_timeout_gives_friendly_page(db, smtp_settings):
    """A provider that accepts the connection but never answers: after OIDC_TIMEOUT_SECONDS, 503."""
    oidc.clear_cache()
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        port = server.getsockname()[1]
        accepted = []
        stop = threading.Event()

        def accept() -> None:
            server.settimeout(0.2)
            while not stop.is_set():
                try:
                    accepted.append(server.accept()[0])
                except OSError:
                    continue

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        try:
            with app_with_provider(db, smtp_settings, f"http://127.0.0.1:{port}", timeout=1) as client:
                started = time.monotonic()
                response = client.get("/login/oidc/down")
                assert time.monotonic() - started < 5
                assert_nothing_happened(client, db, response, "unavailable", 503)
        finally:
            stop.set()
            thread.join(timeout=5)
            for conn in accepted:
                conn.close()


def test_discovery_with_another_issuer_is_refused(db, smtp_settings, oidc_provider):
    """Unknown issuer: the discovery document must name exactly the configured issuer (OIDC Discovery 4.3)."""
    oidc.clear_cache()
    with app_with_provider(db, smtp_settings, oidc_provider.issuer + "/") as client:
        response = client.get("/login/oidc/down")
        assert_nothing_happened(client, db, response, "bad_response", 502)


# --- configuration ----------------------------------------------------------------------------------------


GOOD = {"key": "sk", "name": "ServiceKonto", "issuer": "https://id.example/realms/x", "client_id": "c"}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({**GOOD}, "exactly one of"),
        ({**GOOD, "client_secret": "s", "client_secret_env": "X"}, "exactly one of"),
        ({**GOOD, "client_secret_env": "H1_OIDC_UNSET_VARIABLE"}, "H1_OIDC_UNSET_VARIABLE"),
        ({**GOOD, "client_secret": "s", "key": "Bad Key"}, '"key"'),
        ({**GOOD, "client_secret": "s", "key": "connect"}, '"key"'),
        ({**GOOD, "client_secret": "s", "issuer": "ftp://x"}, '"issuer"'),
        ({**GOOD, "client_secret": "s", "scopes": ["email"]}, "openid"),
        ({**GOOD, "client_secret": "s", "claims": {"age": "x"}}, "claims"),
        ({**GOOD, "client_secret": "s", "verified": "yes"}, "verified"),
        ({**GOOD, "client_secret": "s", "verified": True, "claims": {"postal_code": None}}, "postal_code"),
        ({**GOOD, "client_secret": "s", "colour": "blue"}, "unknown field"),
        ({**GOOD, "client_secret": "s", "token_auth_method": "private_key_jwt"}, "token_auth_method"),
    ],
)
def test_malformed_provider_config_is_rejected(entry, message):
    with pytest.raises(SettingsError, match=message):
        Settings(oidc_providers=json.dumps([entry])).validate()


def test_provider_config_parsing():
    with pytest.raises(SettingsError, match="not valid JSON"):
        Settings(oidc_providers="[{").validate()
    with pytest.raises(SettingsError, match="JSON list"):
        Settings(oidc_providers="{}").validate()
    with pytest.raises(SettingsError, match="used twice"):
        Settings(oidc_providers=json.dumps([{**GOOD, "client_secret": "s"}] * 2)).validate()
    with pytest.raises(SettingsError, match="https"):
        Settings(
            environment="production",
            secret_key="k" * 40,
            base_url="https://mitmachen.example",
            oidc_providers=json.dumps([{**GOOD, "client_secret": "s", "issuer": "http://id.example"}]),
        ).validate()
    providers = oidc.parse_providers(
        json.dumps([{**GOOD, "client_secret_env": "SK_SECRET", "scopes": "openid email", "verified": True}]),
        env={"SK_SECRET": "from-env"},
    )
    provider = providers["sk"]
    assert provider.client_secret == "from-env" and provider.scopes == ("openid", "email")
    assert provider.claims["postal_code"] == "address.postal_code" and provider.method == "oidc:sk"
    assert "from-env" not in repr(provider)


def test_birthdate_parsing():
    import datetime as dt

    assert oidc.parse_birthdate("2001-04-05") == (dt.date(2001, 4, 5), 2001)
    assert oidc.parse_birthdate("1999") == (None, 1999)
    assert oidc.parse_birthdate("0000-04-05") == (None, None)
    assert oidc.parse_birthdate("soon") == (None, None)
    assert oidc.parse_birthdate(None) == (None, None)
