"""Pages of the second factor: the sign-in step, forced and voluntary enrolment, recovery codes, disabling
and replacing the authenticator app (each after re-authentication), and the administrator's reset."""

from __future__ import annotations

import logging
from typing import Any

from sqlmodel import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app import forms
from app.accounts import twofactor
from app.accounts.forms import ReauthForm as BaseReauthForm
from app.forms import FieldError, Form
from app.i18n import gettext as _
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


class ReauthForm(BaseReauthForm):
    """Password or current code, one of them required (disabling or replacing the second factor)."""

    def clean(self) -> None:
        if not self.cleaned.get("password") and not self.cleaned.get("code"):
            raise FieldError(_("Please enter your current password or a code from your authenticator app."))


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
    if request.method == "GET":
        return _enrol_page(request, db, user, CodeForm(), "/login/2fa/enrol")
    form = CodeForm(form_of(request))
    if not form.is_valid():
        return _enrol_page(request, db, user, form, "/login/2fa/enrol", 400)
    _limit(request, db, user)
    try:
        codes = twofactor.confirm_enrolment(db, settings_of(request), user, form.cleaned["code"])
    except twofactor.TwoFactorError:
        _failed(request, user, "enrolment")
        form.add_error(
            "code", _("This code is not valid. Check the time on your phone and enter the current code.")
        )
        return _enrol_page(request, db, user, form, "/login/2fa/enrol", 400)
    next_url = twofactor.complete_sign_in(request, db, user, pending, "totp-enrolment")
    request.state.user = user
    return _codes_page(request, codes, next_url)


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
    if request.method == "GET":
        return _enrol_page(request, db, user, CodeForm(), "/account/2fa/setup")
    form = CodeForm(form_of(request))
    if not form.is_valid():
        return _enrol_page(request, db, user, form, "/account/2fa/setup", 400)
    _limit(request, db, user)
    try:
        codes = twofactor.confirm_enrolment(db, settings_of(request), user, form.cleaned["code"])
    except twofactor.TwoFactorError:
        _failed(request, user, "enrolment")
        form.add_error(
            "code", _("This code is not valid. Check the time on your phone and enter the current code.")
        )
        return _enrol_page(request, db, user, form, "/account/2fa/setup", 400)
    return _codes_page(request, codes, "/account/2fa")


def _reauth(request: Request, db: Session, user: User, action: str, **page: Any) -> Response | None:
    """None once the user re-authenticated (ASVS V7.5.1); otherwise the confirmation page to show."""
    if request.method == "GET":
        return render(request, "app/twofactor_reauth.html", form=ReauthForm(), action=action, **page)
    form = ReauthForm(form_of(request))
    if form.is_valid():
        _limit(request, db, user)
        if twofactor.reauthenticate(
            db, settings_of(request), user, password=form.cleaned["password"], code=form.cleaned["code"]
        ):
            return None
        _failed(request, user, "re-authentication")
        form.add_error("__all__", _("The password or the code is wrong."))
    return render(request, "app/twofactor_reauth.html", 400, form=form, action=action, **page)


def _require_enabled(db: Session, user: User) -> None:
    if not twofactor.is_enabled(db, user):
        raise HTTPException(404)


@view
def regenerate(request: Request, db: Session) -> Response:
    user = require(request, "account.view")
    _require_enabled(db, user)
    page = _reauth(
        request,
        db,
        user,
        "/account/2fa/recovery-codes",
        title=_("New recovery codes"),
        explanation=_("Your old recovery codes stop working as soon as the new ones are created."),
        button=_("Create new recovery codes"),
    )
    if page is not None:
        return page
    return _codes_page(request, twofactor.new_recovery_codes(db, user), "/account/2fa")


@view
def replace(request: Request, db: Session) -> Response:
    user = require(request, "account.view")
    _require_enabled(db, user)
    page = _reauth(
        request,
        db,
        user,
        "/account/2fa/replace",
        title=_("Set up a new authenticator app"),
        explanation=_("Your current app keeps working until you confirm a code from the new one."),
        button=_("Continue"),
    )
    if page is not None:
        return page
    twofactor.begin_enrolment(db, settings_of(request), user, fresh=True)
    return redirect("/account/2fa/setup")


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
    page = _reauth(
        request,
        db,
        user,
        "/account/2fa/disable",
        title=_("Turn off two-factor authentication"),
        explanation=_("Your account will then be protected by your password alone."),
        button=_("Turn off two-factor authentication"),
    )
    if page is not None:
        return page
    twofactor.disable(db, user)
    revoke_all(db, user.id, "2fa-disabled", keep=current_record(db, request.session))
    flash(request, _("Two-factor authentication is turned off. Other sessions were signed out."))
    return redirect("/account/2fa")


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
