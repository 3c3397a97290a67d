"""OpenID Connect pages: start a sign-in, the provider's callback, proving an existing account, and
linking/unlinking providers on the account page.

Talking to the provider (discovery, token, keys, UserInfo) happens *before* the request's unit of work
opens, so no database transaction waits on the network; the handler then decides and writes in one
transaction, or writes nothing at all when any check failed.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.accounts import oidc, oidc_accounts, services
from app.accounts.forms import DeleteAccountForm
from app.accounts.oidc import Assertion, OidcError, Provider, providers_of
from app.accounts.services import AccountError
from app.i18n import gettext as _
from app.models import User
from app.permissions import require
from app.security import TokenError, safe_next, sign, token_digest, unsign
from app.web import _run, flash, form_of, rate_limit, redirect, render, settings_of, view

log = logging.getLogger("mitmachen.oidc")

PENDING_KEY = "oidc_pending"
PENDING_SECONDS = 900
LINK_START_PURPOSE = "oidc-link-start"
LINK_START_SECONDS = 3600


class ProofForm(DeleteAccountForm):
    fields = ("password",)


def _finish_sign_in(request: Request, db: Session, user: User, next_url: str, provider: Provider) -> Response:
    from app.accounts.twofactor import sign_in

    return sign_in(request, db, user, safe_next(next_url), method=provider.method)


def _error(request: Request, provider: Provider | None, exc: OidcError) -> Response:
    name = provider.name if provider else _("the provider")
    log.warning(
        "oidc sign-in failed provider=%s code=%s detail=%s", provider and provider.key, exc.code, exc.detail
    )
    return render(
        request,
        "app/oidc_error.html",
        exc.status,
        provider=provider,
        message=exc.message(name),
        reason=exc.code,
    )


def _refused(
    request: Request, db: Session, provider: Provider | None, message: str, status: int = 400
) -> Response:
    db.rollback()
    return render(
        request, "app/oidc_error.html", status, provider=provider, message=message, reason="account"
    )


def two_phase(network: Callable[[Request, Provider], Any]):
    """Wrap ``handler(request, db)``: first ``network(request, provider)`` runs in a worker thread without a
    database session (its result or OidcError lands in ``request.state.oidc_result``), then the handler runs
    as the usual unit of work (app/web.py). Unknown provider keys answer 404."""

    def decorate(handler):
        async def endpoint(request: Request) -> Response:
            provider = providers_of(settings_of(request)).get(request.path_params["key"])
            result: Any = None
            if provider is not None:
                try:
                    result = await run_in_threadpool(network, request, provider)
                except OidcError as exc:
                    result = exc
            request.state.oidc_provider = provider
            request.state.oidc_result = result
            return await run_in_threadpool(_run, handler, request)

        endpoint.__name__ = handler.__name__
        return endpoint

    return decorate


def _discover(request: Request, provider: Provider) -> dict:
    return oidc.metadata(settings_of(request), provider)


def _provider(request: Request) -> Provider:
    provider = request.state.oidc_provider
    if provider is None:
        raise HTTPException(404)
    return provider


@two_phase(_discover)
def start(request: Request, db: Session) -> Response:
    """GET /login/oidc/{key}?next=…: off to the provider (a GET like any "sign in with" link; the flow's
    state binds the answer to this browser, so starting one from elsewhere achieves nothing)."""
    provider = _provider(request)
    if isinstance(request.state.oidc_result, OidcError):
        return _error(request, provider, request.state.oidc_result)
    next_url = safe_next(request.query_params.get("next"))
    url = oidc.begin(settings_of(request), request.session, provider, next_url=next_url)
    return redirect(url, 302)


def link_token(request: Request, user: User, provider: Provider) -> str:
    """A short-lived token for the account page's "Connect" link, bound to the user, the provider and this
    session's CSRF token, so another site cannot start linking in the user's name."""
    from app.security import csrf_token

    bind = token_digest(csrf_token(request.session))[:16]
    return sign(
        settings_of(request).secret_key, LINK_START_PURPOSE, {"uid": user.id, "p": provider.key, "c": bind}
    )


@two_phase(_discover)
def link_start(request: Request, db: Session) -> Response:
    provider = _provider(request)
    user = require(request, "account.view")
    try:
        payload = unsign(
            settings_of(request).secret_key,
            LINK_START_PURPOSE,
            request.query_params.get("t", ""),
            LINK_START_SECONDS,
        )
    except TokenError:
        payload = None
    expected = token_digest(request.session.get("csrf", ""))[:16]
    if (
        not isinstance(payload, dict)
        or payload.get("uid") != user.id
        or payload.get("p") != provider.key
        or not hmac.compare_digest(str(payload.get("c", "")), expected)
    ):
        flash(request, _("This link has expired. Please try again."), "error")
        return redirect("/account")
    if isinstance(request.state.oidc_result, OidcError):
        return _error(request, provider, request.state.oidc_result)
    url = oidc.begin(
        settings_of(request), request.session, provider, next_url="/account", link_user_id=user.id
    )
    return redirect(url, 302)


def _complete(request: Request, provider: Provider) -> Assertion:
    return oidc.complete(settings_of(request), request.session, provider, request.query_params)


@two_phase(_complete)
def callback(request: Request, db: Session) -> Response:
    provider = _provider(request)
    result = request.state.oidc_result
    if isinstance(result, OidcError):
        return _error(request, provider, result)
    assertion: Assertion = result
    settings = settings_of(request)
    try:
        outcome = oidc_accounts.resolve(
            db, settings, provider=provider, assertion=assertion, current_user=request.state.user
        )
    except AccountError as exc:
        return _refused(request, db, provider, str(exc))
    except IntegrityError:  # the same identity arrived twice at once
        log.warning("oidc identity race provider=%s", provider.key)
        return _refused(request, db, provider, _("Please start the sign-in again."), 409)
    if outcome.kind == "needs_proof":
        pending = assertion.to_session()
        pending.update(uid=outcome.user.id, exp=int(time.time()) + PENDING_SECONDS)
        request.session[PENDING_KEY] = pending
        return redirect("/login/oidc/connect")
    if outcome.kind == "linked":
        flash(request, _("%(provider)s is now connected to your account.", provider=provider.name))
        return redirect("/account")
    if outcome.kind == "created":
        flash(request, _("Welcome! Your account has been created with %(provider)s.", provider=provider.name))
    return _finish_sign_in(request, db, outcome.user, assertion.next_url, provider)


def _pending(request: Request, db: Session) -> tuple[dict, User, Provider] | None:
    pending = request.session.get(PENDING_KEY)
    if not isinstance(pending, dict) or pending.get("exp", 0) <= time.time():
        request.session.pop(PENDING_KEY, None)
        return None
    provider = providers_of(settings_of(request)).get(str(pending.get("provider")))
    user = db.get(User, pending.get("uid"))
    if provider is None or user is None or user.is_deleted or not user.email:
        request.session.pop(PENDING_KEY, None)
        return None
    return pending, user, provider


@view
def connect(request: Request, db: Session) -> Response:
    """The e-mail address the provider gave belongs to an existing account: prove it before linking."""
    found = _pending(request, db)
    if found is None:
        return render(
            request,
            "app/message.html",
            400,
            title=_("Sign-in expired"),
            message=_("There is no sign-in waiting to be connected. Please start the sign-in again."),
            link="/login",
            link_text=_("Log in"),
        )
    pending, user, provider = found
    assertion = Assertion.from_session(pending)
    context = {"provider": provider, "email": user.email}
    if request.method == "GET":
        return render(request, "app/oidc_connect.html", form=ProofForm(), **context)
    settings = settings_of(request)
    if form_of(request).get("action") == "mail":
        rate_limit(request, db, "mail", user.email or "")
        oidc_accounts.send_link_mail(db, settings, user=user, provider=provider, assertion=assertion)
        request.session.pop(PENDING_KEY, None)
        return render(
            request,
            "app/message.html",
            title=_("Check your inbox"),
            message=_(
                "We have sent a link to %(email)s. Open it to connect %(provider)s with your account, "
                "then sign in with %(provider)s again.",
                email=user.email,
                provider=provider.name,
            ),
        )
    form = ProofForm(form_of(request))
    if not form.is_valid():
        return render(request, "app/oidc_connect.html", 400, form=form, **context)
    rate_limit(request, db, "login", user.email or "")
    try:
        oidc_accounts.prove_with_password(
            db, user=user, password=form.cleaned["password"], provider=provider, assertion=assertion
        )
    except services.NotConfirmed as exc:
        db.rollback()
        rate_limit(request, db, "mail", user.email or "")
        services.send_confirmation(db, settings, user)
        form.add_error("password", str(exc))
        return render(request, "app/oidc_connect.html", 400, form=form, **context)
    except AccountError as exc:
        db.rollback()
        form.add_error("password", str(exc))
        return render(request, "app/oidc_connect.html", 400, form=form, **context)
    request.session.pop(PENDING_KEY, None)
    flash(request, _("%(provider)s is now connected to your account.", provider=provider.name))
    return _finish_sign_in(request, db, user, assertion.next_url, provider)


@view
def connect_confirm(request: Request, db: Session) -> Response:
    settings = settings_of(request)
    try:
        _user, provider = oidc_accounts.confirm_link_mail(
            db, settings, providers_of(settings), token=request.query_params.get("token", "")
        )
    except TokenError as exc:
        db.rollback()
        message = (
            _("This link has expired. Please sign in with the provider again to get a new one.")
            if exc.reason == "expired"
            else _("This link is not valid.")
        )
        return render(request, "app/message.html", 400, title=_("Connection failed"), message=message)
    except AccountError as exc:
        return _refused(request, db, None, str(exc))
    flash(
        request,
        _(
            "%(provider)s is now connected to your account. You can sign in with it now.",
            provider=provider.name,
        ),
    )
    return redirect("/login")


@view
def unlink(request: Request, db: Session) -> Response:
    user = require(request, "account.view")
    raw = form_of(request).get("identity")
    try:
        oidc_accounts.unlink(db, user=user, identity_id=int(str(raw)))
    except (TypeError, ValueError):
        raise HTTPException(400, _("Please choose one of the options.")) from None
    except AccountError as exc:
        db.rollback()
        flash(request, str(exc), "error")
        return redirect("/account")
    flash(request, _("The sign-in method has been removed."))
    return redirect("/account")


def account_context(request: Request, db: Session) -> dict[str, Any]:
    """The account page's "Sign-in methods" section."""
    user = request.state.user
    providers = providers_of(settings_of(request))
    identities = oidc_accounts.identities_of(db, user.id)
    linked = [
        {
            "id": i.id,
            "name": providers[i.provider].name if i.provider in providers else i.provider,
            "since": i.created_at,
        }
        for i in identities
    ]
    return {
        "oidc_linked": linked,
        "oidc_can_unlink": oidc_accounts.sign_in_methods(db, user) > 1,
        "oidc_has_password": bool(user.password_hash),
        "oidc_link": [
            {"name": p.name, "url": f"/account/oidc/{p.key}/link?t={link_token(request, user, p)}"}
            for p in providers.values()
            if p.key not in {i.provider for i in identities}
        ],
    }


def login_providers(settings) -> list[Provider]:
    """Template global: the providers offered on the login and registration pages."""
    return list(providers_of(settings).values())


def install(app) -> None:
    """Template globals for app/_oidc_login.html."""
    app.state.templates.env.globals["oidc_login_providers"] = login_providers


routes = [
    Route("/login/oidc/connect", connect, methods=["GET", "POST"], name="oidc_connect"),
    Route("/login/oidc/connect/confirm", connect_confirm, name="oidc_connect_confirm"),
    Route("/login/oidc/{key}", start, name="oidc_start"),
    Route("/login/oidc/{key}/callback", callback, name="oidc_callback"),
    Route("/account/oidc/{key}/link", link_start, name="oidc_link"),
    Route("/account/oidc/unlink", unlink, methods=["POST"], name="oidc_unlink"),
]
