"""OpenID Connect sign-in: provider configuration, discovery, the authorization code flow and the ID token.

Protocol only (no database): ``begin`` builds the authorization request and remembers its state, nonce
and PKCE verifier in the browser's session; ``complete`` checks the callback against them, redeems the
code, validates the ID token and fetches the claims, returning an ``Assertion``. What the assertion means
for accounts (sign in, link, create) is decided by app/accounts/oidc_accounts.py.

Checks (ASVS V10.1.2, V10.2.1, V10.5.1, V10.5.2, V10.5.4; OpenID Connect Core 3.1.3.7):

- ``state`` is random per flow, bound to the session, single use and expires after ``FLOW_SECONDS``;
- PKCE with S256 on every request; the verifier never leaves the session until the token request;
- the provider's ``iss`` response parameter (RFC 9207) must name the configured issuer;
- the discovery document's ``issuer`` must equal the configured issuer exactly;
- the ID token's signature (asymmetric algorithms only, keys from the provider's JWKS), ``iss``, ``aud``
  (and ``azp`` with several audiences), ``exp``/``iat``/``nbf`` with at most OIDC_CLOCK_SKEW_SECONDS of
  leeway, ``nonce`` (bound to the session) and ``sub``;
- the UserInfo response must be about the same ``sub``.

The identity is (issuer, sub), never the e-mail address (ASVS V6.8.1).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from app.i18n import lazy
from app.settings import Settings, SettingsError

log = logging.getLogger("mitmachen.oidc")

KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
RESERVED_KEYS = ("connect",)  # /login/oidc/connect is the page that links an existing account
CLAIM_FIELDS = ("name", "email", "email_verified", "birth_date", "postal_code")
DEFAULT_CLAIMS = {
    "name": "name",
    "email": "email",
    "email_verified": "email_verified",
    "birth_date": "birthdate",
    "postal_code": "address.postal_code",
}
PROVIDER_FIELDS = {
    "key",
    "name",
    "issuer",
    "client_id",
    "client_secret",
    "client_secret_env",
    "scopes",
    "claims",
    "verified",
    "token_auth_method",
}
TOKEN_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
# ID tokens must be signed with the provider's private key; "none" and shared-secret MACs are refused
SIGNING_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
FLOW_SECONDS = 600
MAX_FLOWS = 4
FLOWS_KEY = "oidc_flows"


# --- configuration ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Provider:
    """One configured OpenID provider (an entry of OIDC_PROVIDERS)."""

    key: str
    name: str
    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    scopes: tuple[str, ...] = ("openid", "email", "profile")
    claims: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_CLAIMS))
    verified: bool = False
    token_auth_method: str = "client_secret_basic"  # noqa: S105 a method name

    @property
    def method(self) -> str:
        """The sign-in / verification method name, e.g. ``oidc:servicekonto``."""
        return f"oidc:{self.key}"


def _fail(index: int, message: str) -> SettingsError:
    return SettingsError(f"OIDC_PROVIDERS entry {index + 1}: {message}")


def _parse_one(index: int, item: object, *, production: bool, env: Mapping[str, str]) -> Provider:
    if not isinstance(item, dict):
        raise _fail(index, "must be a JSON object")
    unknown = set(item) - PROVIDER_FIELDS
    if unknown:
        raise _fail(index, f"unknown field(s) {', '.join(sorted(unknown))}")
    key = item.get("key")
    if not isinstance(key, str) or not KEY_RE.match(key) or key in RESERVED_KEYS:
        raise _fail(
            index,
            '"key" must be 1-32 characters a-z, 0-9, "-" or "_", starting with a letter or digit '
            '(and not "connect")',
        )
    for name in ("name", "issuer", "client_id"):
        if not isinstance(item.get(name), str) or not item[name].strip():
            raise _fail(index, f'"{name}" is required (a non-empty string)')
    issuer = item["issuer"].strip()
    parts = urlsplit(issuer)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.query or parts.fragment:
        raise _fail(index, '"issuer" must be an https:// URL without query or fragment')
    if production and parts.scheme != "https":
        raise _fail(index, '"issuer" must be https:// in production')
    secret = item.get("client_secret")
    secret_env = item.get("client_secret_env")
    if (secret is None) == (secret_env is None):
        raise _fail(index, 'give exactly one of "client_secret" and "client_secret_env"')
    if secret_env is not None:
        if not isinstance(secret_env, str) or not secret_env:
            raise _fail(index, '"client_secret_env" must name an environment variable')
        secret = env.get(secret_env, "")
        if not secret:
            raise _fail(index, f"the environment variable {secret_env} (client_secret_env) is empty or unset")
    if not isinstance(secret, str) or not secret:
        raise _fail(index, '"client_secret" must be a non-empty string')
    scopes = item.get("scopes", ["openid", "email", "profile"])
    if isinstance(scopes, str):
        scopes = scopes.split()
    if not isinstance(scopes, list) or not all(isinstance(s, str) and s and " " not in s for s in scopes):
        raise _fail(index, '"scopes" must be a list of scope names')
    if "openid" not in scopes:
        raise _fail(index, '"scopes" must include "openid"')
    claims_given = item.get("claims", {})
    if not isinstance(claims_given, dict):
        raise _fail(index, '"claims" must be an object such as {"postal_code": "address.postal_code"}')
    bad = set(claims_given) - set(CLAIM_FIELDS)
    if bad:
        raise _fail(index, f'"claims" knows only {", ".join(CLAIM_FIELDS)}, not {", ".join(sorted(bad))}')
    claims = dict(DEFAULT_CLAIMS)
    for name, path in claims_given.items():
        if path is not None and (not isinstance(path, str) or not path.strip()):
            raise _fail(index, f'"claims.{name}" must be a claim name (dots for nested claims) or null')
        claims[name] = path
    verified = item.get("verified", False)
    if not isinstance(verified, bool):
        raise _fail(index, '"verified" must be true or false')
    if verified and not (claims.get("birth_date") and claims.get("postal_code")):
        raise _fail(index, 'a "verified" provider needs the birth_date and postal_code claims')
    auth_method = item.get("token_auth_method", "client_secret_basic")
    if auth_method not in TOKEN_AUTH_METHODS:
        raise _fail(index, f'"token_auth_method" must be one of {", ".join(TOKEN_AUTH_METHODS)}')
    return Provider(
        key=key,
        name=item["name"].strip(),
        issuer=issuer,
        client_id=item["client_id"].strip(),
        client_secret=secret,
        scopes=tuple(scopes),
        claims=claims,
        verified=verified,
        token_auth_method=auth_method,
    )


def parse_providers(
    raw: str, *, production: bool = False, env: Mapping[str, str] | None = None
) -> dict[str, Provider]:
    """The providers of an OIDC_PROVIDERS value, by key; ``SettingsError`` with a clear message otherwise."""
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise SettingsError(f"OIDC_PROVIDERS is not valid JSON: {exc}") from exc
    if not isinstance(data, list):
        raise SettingsError("OIDC_PROVIDERS must be a JSON list of provider objects")
    env = os.environ if env is None else env
    providers: dict[str, Provider] = {}
    for index, item in enumerate(data):
        provider = _parse_one(index, item, production=production, env=env)
        if provider.key in providers:
            raise _fail(index, f'the key "{provider.key}" is used twice')
        providers[provider.key] = provider
    return providers


_parsed: dict[tuple[str, bool], dict[str, Provider]] = {}


def providers_of(settings: Settings) -> dict[str, Provider]:
    """The configured providers (parsed once per configuration)."""
    cache_key = (settings.oidc_providers, settings.is_production)
    if cache_key not in _parsed:
        _parsed[cache_key] = parse_providers(settings.oidc_providers, production=settings.is_production)
    return _parsed[cache_key]


def redirect_uri(settings: Settings, provider: Provider) -> str:
    return f"{settings.base_url.rstrip('/')}/login/oidc/{provider.key}/callback"


# --- errors -----------------------------------------------------------------------------------------------


MESSAGES = {
    "unavailable": lazy(
        "%(provider)s cannot be reached at the moment. Please try again later or log in another way."
    ),
    "bad_response": lazy(
        "%(provider)s sent an answer we could not use. Please try again later or log in another way."
    ),
    "state": lazy(
        "This sign-in link is not valid for this browser, was already used or has expired. "
        "Please start the sign-in again."
    ),
    "denied": lazy("The sign-in at %(provider)s was cancelled or refused. Nothing was changed."),
    "code": lazy(
        "%(provider)s did not accept the sign-in (it may have expired or been used already). "
        "Please start the sign-in again."
    ),
    "token": lazy(
        "The sign-in answer from %(provider)s failed our security checks. Nothing was changed. "
        "Please start the sign-in again."
    ),
}
STATUS = {"unavailable": 503, "bad_response": 502, "state": 400, "denied": 400, "code": 400, "token": 400}


class OidcError(Exception):
    """A sign-in that must stop. ``code`` picks the message shown; ``detail`` is for the log only."""

    def __init__(self, code: str, detail: str = ""):
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail

    @property
    def status(self) -> int:
        return STATUS[self.code]

    def message(self, provider_name: str) -> str:
        return str(MESSAGES[self.code]) % {"provider": provider_name}


# --- discovery and keys -----------------------------------------------------------------------------------


_cache: dict[str, tuple[float, Any]] = {}
_cache_lock = threading.Lock()


def _cached(key: str) -> Any:
    with _cache_lock:
        entry = _cache.get(key)
        if entry and entry[0] > time.monotonic():
            return entry[1]
        return None


def _remember(key: str, value: Any, seconds: int) -> Any:
    if seconds > 0:
        with _cache_lock:
            _cache[key] = (time.monotonic() + seconds, value)
    return value


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def _get_json(settings: Settings, url: str, what: str) -> Any:
    import httpx

    try:
        with httpx.Client(timeout=settings.oidc_timeout_seconds, follow_redirects=False) as client:
            response = client.get(url, headers={"Accept": "application/json"})
    except httpx.TimeoutException as exc:
        raise OidcError("unavailable", f"{what}: timeout after {settings.oidc_timeout_seconds}s") from exc
    except httpx.HTTPError as exc:
        raise OidcError("unavailable", f"{what}: {exc.__class__.__name__}: {exc}") from exc
    if response.status_code != 200:
        raise OidcError(
            "bad_response" if response.status_code < 500 else "unavailable",
            f"{what}: HTTP {response.status_code}",
        )
    try:
        return response.json()
    except ValueError as exc:
        raise OidcError("bad_response", f"{what}: not JSON") from exc


def metadata(settings: Settings, provider: Provider) -> dict[str, Any]:
    """The provider's discovery document (cached OIDC_DISCOVERY_CACHE_SECONDS), checked against the config."""
    url = provider.issuer.rstrip("/") + "/.well-known/openid-configuration"
    cached = _cached("meta:" + url)
    if cached is not None:
        return cached
    doc = _get_json(settings, url, "discovery")
    if not isinstance(doc, dict):
        raise OidcError("bad_response", "discovery: not an object")
    if doc.get("issuer") != provider.issuer:
        raise OidcError("bad_response", f"discovery: issuer {doc.get('issuer')!r} is not {provider.issuer!r}")
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(doc.get(name), str) or not doc[name].startswith(("https://", "http://")):
            raise OidcError("bad_response", f"discovery: no {name}")
    methods = doc.get("code_challenge_methods_supported")
    if methods is not None and "S256" not in methods:
        raise OidcError("bad_response", "discovery: the provider does not support PKCE with S256")
    return _remember("meta:" + url, doc, settings.oidc_discovery_cache_seconds)


def _keyset(settings: Settings, meta: Mapping[str, Any], *, refresh: bool = False):
    from joserfc.errors import JoseError
    from joserfc.jwk import KeySet

    url = meta["jwks_uri"]
    if not refresh:
        cached = _cached("jwks:" + url)
        if cached is not None:
            return cached
    doc = _get_json(settings, url, "jwks")
    try:
        keys = KeySet.import_key_set(doc)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise OidcError("bad_response", f"jwks: {exc}") from exc
    return _remember("jwks:" + url, keys, settings.oidc_discovery_cache_seconds)


# --- the flow ---------------------------------------------------------------------------------------------


def _client(settings: Settings, provider: Provider):
    from authlib.integrations.httpx_client import OAuth2Client

    return OAuth2Client(
        client_id=provider.client_id,
        client_secret=provider.client_secret,
        scope=" ".join(provider.scopes),
        redirect_uri=redirect_uri(settings, provider),
        code_challenge_method="S256",
        token_endpoint_auth_method=provider.token_auth_method,
        timeout=settings.oidc_timeout_seconds,
        follow_redirects=False,
    )


def begin(
    settings: Settings,
    session: dict,
    provider: Provider,
    *,
    next_url: str = "/",
    link_user_id: int | None = None,
) -> str:
    """The provider's authorization URL for a new flow; state, nonce and PKCE verifier go to ``session``."""
    meta = metadata(settings, provider)
    state = secrets.token_urlsafe(32)
    nonce = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)  # 86 characters, within RFC 7636's 43-128
    now = int(time.time())
    flows = {
        s: f
        for s, f in (session.get(FLOWS_KEY) or {}).items()
        if isinstance(f, dict) and f.get("exp", 0) > now
    }
    while len(flows) >= MAX_FLOWS:  # a few sign-ins may be open in several tabs; the oldest goes
        flows.pop(min(flows, key=lambda s: flows[s]["exp"]))
    flows[state] = {
        "p": provider.key,
        "n": nonce,
        "v": verifier,
        "next": next_url,
        "link": link_user_id,
        "exp": now + FLOW_SECONDS,
    }
    session[FLOWS_KEY] = flows
    with _client(settings, provider) as client:
        url, _ = client.create_authorization_url(
            meta["authorization_endpoint"], state=state, code_verifier=verifier, nonce=nonce
        )
    return url


@dataclass
class Assertion:
    """What a provider asserted about a person in one completed, validated flow."""

    provider: str
    issuer: str
    subject: str
    email: str | None = None
    email_verified: bool = False
    name: str | None = None
    birth_date: dt.date | None = None
    birth_year: int | None = None
    postal_code: str | None = None
    next_url: str = "/"
    link_user_id: int | None = None

    def to_session(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items()}
        data["birth_date"] = self.birth_date.isoformat() if self.birth_date else None
        return data

    @classmethod
    def from_session(cls, data: Mapping[str, Any]) -> Assertion:
        values = {k: data.get(k) for k in cls.__dataclass_fields__}
        if values["birth_date"]:
            values["birth_date"] = dt.date.fromisoformat(values["birth_date"])
        return cls(**values)


def claim(claims: Mapping[str, Any], path: str | None) -> Any:
    """A claim by name, with dots for nested objects (``address.postal_code``)."""
    if not path:
        return None
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def parse_birthdate(value: Any) -> tuple[dt.date | None, int | None]:
    """OpenID's ``birthdate``: YYYY-MM-DD, or YYYY alone, or 0000-MM-DD (year withheld)."""
    if not isinstance(value, str):
        return None, None
    value = value.strip()
    if re.fullmatch(r"\d{4}", value):
        return None, int(value) if value != "0000" else None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        return None, None
    return day, day.year


def _as_bool(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def validate_id_token(
    settings: Settings,
    provider: Provider,
    meta: Mapping[str, Any],
    id_token: str,
    *,
    nonce: str,
    now: int | None = None,
) -> dict[str, Any]:
    """The ID token's claims after checking signature, iss, aud/azp, exp/iat/nbf (bounded leeway), nonce, sub."""
    from joserfc import jwt
    from joserfc.errors import JoseError

    offered = meta.get("id_token_signing_alg_values_supported") or ["RS256"]
    algorithms = [a for a in offered if a in SIGNING_ALGORITHMS] or ["RS256"]
    token = None
    for refresh in (False, True):  # a key we do not know yet: the provider may have rotated its keys
        keys = _keyset(settings, meta, refresh=refresh)
        try:
            token = jwt.decode(id_token, keys, algorithms=algorithms)
            break
        except JoseError as exc:
            if refresh or exc.__class__.__name__ not in ("InvalidKeyIdError", "MissingKeyError"):
                raise OidcError("token", f"id_token: {exc.__class__.__name__}: {exc}") from exc
        except ValueError as exc:
            raise OidcError("token", f"id_token: {exc}") from exc
    assert token is not None
    claims = dict(token.claims)
    registry = jwt.JWTClaimsRegistry(
        now=now,
        leeway=settings.oidc_clock_skew_seconds,
        iss={"essential": True, "value": provider.issuer},
        aud={"essential": True, "value": provider.client_id},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
        nonce={"essential": True, "value": nonce},
    )
    try:
        registry.validate(claims)
    except JoseError as exc:
        raise OidcError("token", f"id_token claims: {exc.__class__.__name__}: {exc}") from exc
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    azp = claims.get("azp")
    if (len(audiences) > 1 or azp is not None) and azp != provider.client_id:
        raise OidcError("token", f"id_token: azp {azp!r} is not our client")
    if not isinstance(claims["sub"], str) or not 0 < len(claims["sub"]) <= 255:
        raise OidcError("token", "id_token: sub is not a string of 1-255 characters")
    return claims


def _userinfo(client, settings, provider, meta, subject: str) -> dict[str, Any]:
    import httpx

    endpoint = meta.get("userinfo_endpoint")
    if not endpoint:
        return {}
    try:
        response = client.get(endpoint, headers={"Accept": "application/json"})
    except httpx.TimeoutException as exc:
        raise OidcError("unavailable", "userinfo: timeout") from exc
    except httpx.HTTPError as exc:
        raise OidcError("unavailable", f"userinfo: {exc}") from exc
    if response.status_code != 200:
        raise OidcError("bad_response", f"userinfo: HTTP {response.status_code}")
    ctype = response.headers.get("content-type", "")
    if ctype.startswith("application/jwt"):
        from joserfc import jwt
        from joserfc.errors import JoseError

        try:
            info = dict(jwt.decode(response.text.strip(), _keyset(settings, meta)).claims)
        except JoseError as exc:
            raise OidcError("token", f"userinfo jwt: {exc}") from exc
        if info.get("iss", provider.issuer) != provider.issuer or info.get("aud", provider.client_id) not in (
            provider.client_id,
            [provider.client_id],
        ):
            raise OidcError("token", "userinfo jwt: foreign iss or aud")
    else:
        try:
            info = response.json()
        except ValueError as exc:
            raise OidcError("bad_response", "userinfo: not JSON") from exc
    if not isinstance(info, dict):
        raise OidcError("bad_response", "userinfo: not an object")
    if info.get("sub") != subject:  # OpenID Connect Core 5.3.4: the sub must match the ID token's
        raise OidcError("token", "userinfo: sub differs from the ID token's")
    return info


def complete(settings: Settings, session: dict, provider: Provider, params: Mapping[str, str]) -> Assertion:
    """Check the callback ``params`` against the session's flow, redeem the code and validate the answer.

    The flow is removed from the session first, so a state is good for one callback only."""
    from authlib.common.errors import AuthlibBaseError

    state = params.get("state") or ""
    flows = dict(session.get(FLOWS_KEY) or {})
    flow = flows.pop(state, None) if state else None
    session[FLOWS_KEY] = flows
    if not isinstance(flow, dict) or flow.get("p") != provider.key:
        raise OidcError("state", "unknown state or other provider")
    if flow.get("exp", 0) <= time.time():
        raise OidcError("state", "flow expired")
    if params.get("error"):
        raise OidcError("denied", f"{params.get('error')}: {params.get('error_description', '')}"[:300])
    meta = metadata(settings, provider)
    iss = params.get("iss")
    if iss is not None and iss != provider.issuer:
        raise OidcError("token", f"authorization response iss {iss!r}")  # RFC 9207 mix-up defence
    if iss is None and meta.get("authorization_response_iss_parameter_supported"):
        raise OidcError("token", "authorization response without iss")
    code = params.get("code")
    if not code:
        raise OidcError("bad_response", "callback without code")
    import httpx

    with _client(settings, provider) as client:
        try:
            token = client.fetch_token(
                meta["token_endpoint"],
                grant_type="authorization_code",
                code=code,
                code_verifier=flow["v"],
            )
        except AuthlibBaseError as exc:  # invalid_grant: a replayed, expired or foreign code
            raise OidcError("code", f"token endpoint: {exc}") from exc
        except httpx.TimeoutException as exc:
            raise OidcError("unavailable", "token endpoint: timeout") from exc
        except httpx.HTTPError as exc:
            raise OidcError("unavailable", f"token endpoint: {exc}") from exc
        except ValueError as exc:
            raise OidcError("bad_response", f"token endpoint: {exc}") from exc
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise OidcError("bad_response", "token response without id_token")
        id_claims = validate_id_token(settings, provider, meta, id_token, nonce=flow["n"])
        info = (
            _userinfo(client, settings, provider, meta, id_claims["sub"]) if token.get("access_token") else {}
        )
    claims = {**info, **id_claims}
    mapping = provider.claims
    email = claim(claims, mapping.get("email"))
    email = email.strip().lower() if isinstance(email, str) and "@" in email and len(email) <= 254 else None
    name = claim(claims, mapping.get("name"))
    if not isinstance(name, str) or not name.strip():
        parts = [claims.get("given_name"), claims.get("family_name")]
        name = " ".join(p for p in parts if isinstance(p, str) and p.strip()) or None
    birth_date, birth_year = parse_birthdate(claim(claims, mapping.get("birth_date")))
    postal = claim(claims, mapping.get("postal_code"))
    return Assertion(
        provider=provider.key,
        issuer=provider.issuer,
        subject=id_claims["sub"],
        email=email,
        email_verified=bool(email) and _as_bool(claim(claims, mapping.get("email_verified"))),
        name=name.strip()[:80] if name else None,
        birth_date=birth_date,
        birth_year=birth_year,
        postal_code=str(postal).strip()[:10]
        if isinstance(postal, str | int) and str(postal).strip()
        else None,
        next_url=flow.get("next") or "/",
        link_user_id=flow.get("link"),
    )
