"""Pages of the second factor: the sign-in step, forced and voluntary enrolment, recovery codes, disabling
and replacing the authenticator app (each after re-authentication by the shared service,
app/accounts/reauth.py), and the administrator's reset."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlmodel import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app import forms
from app.accounts import reauth, twofactor
from app.accounts.forms import ReauthForm
from app.forms import Form
from app.i18n import gettext as _
from app.i18n import lazy
from app.models import User
from app.permissions import require
from app.ratelimit import RateLimited
from app.sessions import current_record, revoke_all
from app.web import client_ip, flash, form_of, rate_limit, redirect, render, settings_of, view

log = logging.getLogger("mitmachen.auth")


class CodeForm(Form):
    fields = ("code",)
    secret_fields = ("code",)

    def clean_code(self, v: Any) -> str:
        return forms.text(v.strip() if isinstance(v, str) else v, max_len=40)


def _limit(request: Request, db: Session, user: User) -> None:
    """Brute-force control of codes (ASVS V6.3.1): attempts per account and per IP address."""
    try:
        rate_limit(request, db, "two_factor", f"user:{user.id}")
    except RateLimited:
        log.warning("auth 2fa rate limited user_id=%s ip=%s", user.id, client_ip(request))
        raise


def _failed(request: Request, user: User, what: str) -> None:
    log.warning("auth 2fa failed user_id=%s ip=%s step=%s", user.id, client_ip(request), what)


def _expired(request: Request) -> Response:
    flash(request, _("Your sign-in has expired. Please log in again."), "error")
    return redirect("/login")


def _enrol_page(
    request: Request, db: Session, user: User, form: CodeForm, action: str, status: int = 200
) -> Response:
    settings = settings_of(request)
    secret = twofactor.begin_enrolment(db, settings, user)
    uri = twofactor.provisioning_uri(settings, user, secret)
    return render(
        request,
        "app/twofactor_enrol.html",
        status,
        form=form,
        action=action,
        qr=twofactor.qr_svg(uri, _("QR code for your authenticator app")),
        secret=twofactor.format_secret(secret),
        forced=action.startswith("/login"),
    )


def _codes_page(request: Request, codes: list[str], continue_url: str) -> Response:
    return render(
        request,
        "app/twofactor_codes.html",
        codes=codes,
        continue_url=continue_url,
        headers={"Cache-Control": "no-store"},
    )


# --- the sign-in step -------------------------------------------------------------------------------------


@view
def verify(request: Request, db: Session) -> Response:
    found = twofactor.pending_user(request, db)
    if found is None:
        return _expired(request)
    user, pending = found
    if not twofactor.is_enabled(db, user):  # e.g. an administrator reset it meanwhile
        return redirect("/login/2fa/enrol")
    if request.method == "GET":
        return render(request, "app/twofactor_verify.html", form=CodeForm())
    form = CodeForm(form_of(request))
    if not form.is_valid():
        return render(request, "app/twofactor_verify.html", 400, form=form)
    _limit(request, db, user)
    factor = twofactor.verify_second_factor(db, settings_of(request), user, form.cleaned["code"])
    if factor is None:
        _failed(request, user, "sign-in")
        form.add_error(
            "code",
            _(
                "This code is not valid. Enter the current code from your app (each code works only once, "
                "so you may have to wait for the next one) or an unused recovery code."
            ),
        )
        return render(request, "app/twofactor_verify.html", 400, form=form)
    next_url = twofactor.complete_sign_in(request, db, user, pending, factor)
    if factor == "recovery":
        left = twofactor.remaining_recovery_codes(db, user.id)
        flash(
            request,
            _(
                "You signed in with a recovery code; %(n)s unused codes remain. "
                "You can create new ones under My account.",
                n=left,
            ),
            "info" if left < 3 else "success",
        )
    return redirect(next_url)


@view
def forced_enrol(request: Request, db: Session) -> Response:
    """Enrolment as part of the sign-in of a user whose role requires a second factor (ASVS V6.3.3)."""
    found = twofactor.pending_user(request, db)
    if found is None:
        return _expired(request)
    user, pending = found
    if twofactor.is_enabled(db, user):
        return redirect("/login/2fa")
    codes = _enrolment(request, db, user, "/login/2fa/enrol")
    if isinstance(codes, Response):
        return codes
    next_url = twofactor.complete_sign_in(request, db, user, pending, "totp-enrolment")
    request.state.user = user
    return _codes_page(request, codes, next_url)


def _enrolment(request: Request, db: Session, user: User, action: str) -> Response | list[str]:
    """The enrolment page (GET, or a form or code that is not right: 400), else the new recovery codes
    once the first code from the app confirmed the enrolment."""
    if request.method == "GET":
        return _enrol_page(request, db, user, CodeForm(), action)
    form = CodeForm(form_of(request))
    if not form.is_valid():
        return _enrol_page(request, db, user, form, action, 400)
    _limit(request, db, user)
    try:
        return twofactor.confirm_enrolment(db, settings_of(request), user, form.cleaned["code"])
    except twofactor.TwoFactorError:
        _failed(request, user, "enrolment")
        form.add_error(
            "code", _("This code is not valid. Check the time on your phone and enter the current code.")
        )
        return _enrol_page(request, db, user, form, action, 400)


# --- the account's second factor ----------------------------------------------------------------------------


@view
def overview(request: Request, db: Session) -> Response:
    user = require(request, "account.view")
    cred = twofactor.credential(db, user.id)
    return render(
        request,
        "app/twofactor_account.html",
        enabled=cred is not None and cred.is_active,
        confirmed_at=cred.confirmed_at if cred is not None else None,
        remaining=twofactor.remaining_recovery_codes(db, user.id),
        required=twofactor.role_requires_2fa(settings_of(request), user),
    )


@view
def setup(request: Request, db: Session) -> Response:
    user = require(request, "account.view")
    cred = twofactor.credential(db, user.id)
    if cred is not None and cred.is_active and not cred.pending_secret:
        return redirect("/account/2fa")  # replacing an active app needs re-authentication first
    codes = _enrolment(request, db, user, "/account/2fa/setup")
    if isinstance(codes, Response):
        return codes
    return _codes_page(request, codes, "/account/2fa")


def _require_enabled(db: Session, user: User) -> None:
    if not twofactor.is_enabled(db, user):
        raise HTTPException(404)


# Changes of the second factor, each after re-authentication by the shared service (app/accounts/reauth.py,
# ASVS V7.5.1): the password if the account has one, else the current code of the app.
RECOVERY = reauth.register_purpose(
    "2fa_recovery_codes", "/account/2fa/recovery-codes", lazy("New recovery codes")
)
REPLACE = reauth.register_purpose(
    "2fa_replace", "/account/2fa/replace", lazy("Set up a new authenticator app")
)
DISABLE = reauth.register_purpose(
    "2fa_disable", "/account/2fa/disable", lazy("Turn off two-factor authentication")
)


def _reauthenticated(
    request: Request,
    db: Session,
    user: User,
    purpose: reauth.Purpose,
    done: Callable[[], Response],
    *,
    explanation: str,
    button: str,
) -> Response:
    """The confirmation page of ``purpose`` (GET, or a POST that did not re-authenticate: 400), else
    ``done()``."""
    form = ReauthForm(form_of(request)) if request.method == "POST" else ReauthForm()
    if request.method == "POST":
        if form.is_valid() and reauth.confirm(request, db, user, purpose.name, form):
            return done()
    return render(
        request,
        "app/twofactor_reauth.html",
        400 if form.errors else 200,
        form=form,
        action=purpose.url,
        title=_(purpose.title),
        explanation=explanation,
        button=button,
        **reauth.context(request, db, user, purpose.name),
    )


@view
def regenerate(request: Request, db: Session) -> Response:
    user = require(request, "account.view")
    _require_enabled(db, user)
    return _reauthenticated(
        request,
        db,
        user,
        RECOVERY,
        lambda: _codes_page(request, twofactor.new_recovery_codes(db, user), "/account/2fa"),
        explanation=_("Your old recovery codes stop working as soon as the new ones are created."),
        button=_("Create new recovery codes"),
    )


@view
def replace(request: Request, db: Session) -> Response:
    user = require(request, "account.view")
    _require_enabled(db, user)

    def done() -> Response:
        twofactor.begin_enrolment(db, settings_of(request), user, fresh=True)
        return redirect("/account/2fa/setup")

    return _reauthenticated(
        request,
        db,
        user,
        REPLACE,
        done,
        explanation=_("Your current app keeps working until you confirm a code from the new one."),
        button=_("Continue"),
    )


@view
def disable(request: Request, db: Session) -> Response:
    user = require(request, "account.view")
    _require_enabled(db, user)
    if twofactor.role_requires_2fa(settings_of(request), user):
        return render(
            request,
            "app/message.html",
            403,
            title=_("Two-factor authentication is required"),
            message=_(
                "Your role requires two-factor authentication. You can set up a new authenticator app instead."
            ),
            link="/account/2fa/replace",
            link_text=_("Set up a new authenticator app"),
        )

    def done() -> Response:
        twofactor.disable(db, user)
        revoke_all(db, user.id, "2fa-disabled", keep=current_record(db, request.session))
        flash(request, _("Two-factor authentication is turned off. Other sessions were signed out."))
        return redirect("/account/2fa")

    return _reauthenticated(
        request,
        db,
        user,
        DISABLE,
        done,
        explanation=_("Your account will then be protected by your password alone."),
        button=_("Turn off two-factor authentication"),
    )


@view
def admin_reset(request: Request, db: Session) -> Response:
    actor = require(request, "admin.users")
    target = db.get(User, request.path_params["user_id"])
    if target is None or target.is_deleted:
        raise HTTPException(404)
    twofactor.admin_reset(db, actor=actor, target=target)
    flash(
        request,
        _(
            "Two-factor authentication of %(name)s was reset; they set it up again at their next login.",
            name=target.display_name,
        ),
    )
    return redirect("/admin/users")


routes = [
    Route("/login/2fa", verify, methods=["GET", "POST"], name="twofactor_verify"),
    Route("/login/2fa/enrol", forced_enrol, methods=["GET", "POST"], name="twofactor_forced_enrol"),
    Route("/account/2fa", overview, name="twofactor"),
    Route("/account/2fa/setup", setup, methods=["GET", "POST"], name="twofactor_setup"),
    Route("/account/2fa/recovery-codes", regenerate, methods=["GET", "POST"], name="twofactor_recovery"),
    Route("/account/2fa/replace", replace, methods=["GET", "POST"], name="twofactor_replace"),
    Route("/account/2fa/disable", disable, methods=["GET", "POST"], name="twofactor_disable"),
    Route(
        "/admin/users/{user_id:int}/2fa/reset", admin_reset, methods=["POST"], name="twofactor_admin_reset"
    ),
]
