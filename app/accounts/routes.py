"""Account pages: thin handlers that parse a form, call one service and render or redirect."""

from __future__ import annotations

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app import i18n
from app.accounts import oidc_routes, reauth, services, twofactor
from app.accounts.forms import (
    ChangePasswordForm,
    ConfirmDeleteForm,
    EmailForm,
    LoginForm,
    NewPasswordForm,
    ProfileForm,
    RegisterForm,
)
from app.i18n import gettext as _
from app.permissions import require
from app.security import TokenError, safe_next
from app.sessions import active_sessions, current_record, end_session, revoke_all
from app.web import flash, form_of, rate_limit, redirect, render, settings_of, view

DELETE = reauth.register_purpose(
    "delete_account", "/account/delete", i18n.lazy("Deletion of your account")
).name


@view
def register(request: Request, db: Session) -> Response:
    if request.method == "GET":
        return render(request, "app/register.html", form=RegisterForm(initial={"locale": i18n.get_locale()}))
    form = RegisterForm(form_of(request))
    if not form.is_valid():
        return render(request, "app/register.html", 400, form=form)
    rate_limit(request, db, "register")
    rate_limit(request, db, "mail", form.cleaned["email"])
    services.register(
        db,
        settings_of(request),
        email=form.cleaned["email"],
        password=form.cleaned["password"],
        display_name=form.cleaned["display_name"],
        locale=form.cleaned["locale"],
    )
    return redirect("/register/sent")


@view
def register_sent(request: Request, db: Session) -> Response:
    return render(
        request,
        "app/message.html",
        title=_("Check your inbox"),
        message=_(
            "If the address can be used, we have sent a confirmation link to it. "
            "Open the link to activate your account."
        ),
    )


@view
def confirm(request: Request, db: Session) -> Response:
    token = request.query_params.get("token", "")
    try:
        services.confirm_email(db, settings_of(request), token=token)
    except TokenError as exc:
        message = (
            _("This confirmation link has expired. Log in to get a new one.")
            if exc.reason == "expired"
            else _("This confirmation link is not valid.")
        )
        return render(request, "app/message.html", 400, title=_("Confirmation failed"), message=message)
    flash(request, _("Your e-mail address is confirmed. You can log in now."))
    return redirect("/login")


@view
def login(request: Request, db: Session) -> Response:
    next_url = safe_next(request.query_params.get("next") or form_of(request).get("next"))
    if request.method == "GET":
        if request.state.user is not None:
            return redirect(next_url)
        return render(request, "app/login.html", form=LoginForm(initial={"next": next_url}))
    form = LoginForm(form_of(request), initial={"next": next_url})
    if not form.is_valid():
        return render(request, "app/login.html", 400, form=form)
    rate_limit(request, db, "login", form.cleaned["email"])
    try:
        user = services.authenticate(db, email=form.cleaned["email"], password=form.cleaned["password"])
    except services.NotConfirmed as exc:
        rate_limit(request, db, "mail", form.cleaned["email"])
        user = services.find_by_email(db, form.cleaned["email"])
        services.send_confirmation(db, settings_of(request), user)
        form.add_error("__all__", str(exc))
        return render(request, "app/login.html", 400, form=form)
    except services.LoginFailed as exc:
        twofactor.log_failed_login(request, form.cleaned["email"], "password")
        form.add_error("__all__", str(exc))
        return render(request, "app/login.html", 400, form=form)
    return twofactor.sign_in(request, db, user, next_url, method="password")


@view
def logout(request: Request, db: Session) -> Response:
    end_session(db, request.session)
    flash(request, _("You are logged out."))
    return redirect("/")


@view
def forgot(request: Request, db: Session) -> Response:
    if request.method == "GET":
        return render(request, "app/forgot.html", form=EmailForm())
    form = EmailForm(form_of(request))
    if not form.is_valid():
        return render(request, "app/forgot.html", 400, form=form)
    rate_limit(request, db, "mail", form.cleaned["email"])
    services.request_password_reset(db, settings_of(request), email=form.cleaned["email"])
    return render(
        request,
        "app/message.html",
        title=_("Check your inbox"),
        message=_("If an account exists for this address, we have sent a link to choose a new password."),
    )


@view
def reset(request: Request, db: Session) -> Response:
    settings = settings_of(request)
    token = request.query_params.get("token") or form_of(request).get("token") or ""
    try:
        user = services.user_for_reset(db, settings, token=str(token))
    except TokenError as exc:
        message = (
            _("This link has expired. Please ask for a new one.")
            if exc.reason == "expired"
            else _("This link is not valid or was already used. Please ask for a new one.")
        )
        return render(
            request,
            "app/message.html",
            400,
            title=_("Reset failed"),
            message=message,
            link="/password/forgot",
            link_text=_("Ask for a new link"),
        )
    if request.method == "GET":
        return render(request, "app/reset.html", form=NewPasswordForm(initial={"token": token}))
    form = NewPasswordForm(form_of(request), initial={"token": token})
    if not form.is_valid():
        return render(request, "app/reset.html", 400, form=form)
    services.set_password(db, user=user, password=form.cleaned["password"], reason="reset")
    request.session.clear()
    flash(request, _("Your password has been changed. Please log in."))
    return redirect("/login")


def _district_choices(request: Request, db: Session) -> dict[str, str]:
    provider = request.app.state.district_choices
    return {str(k): v for k, v in provider(db)} if provider else {}


def _account_page(request: Request, db: Session, status: int = 200, **forms) -> Response:
    user = request.state.user
    districts = _district_choices(request, db)
    forms.setdefault(
        "profile_form",
        ProfileForm(
            initial={
                "display_name": user.display_name,
                "district_id": str(user.district_id or ""),
                "locale": user.locale,
            },
            districts=districts,
        ),
    )
    forms.setdefault("password_form", ChangePasswordForm())
    return render(
        request,
        "app/account.html",
        status,
        districts=districts,
        sessions=active_sessions(db, user.id),
        current=current_record(db, request.session),
        **oidc_routes.account_context(request, db),
        **forms,
    )


@view
def account(request: Request, db: Session) -> Response:
    user = require(request, "account.view")
    if request.method == "GET":
        return _account_page(request, db)
    form = ProfileForm(form_of(request), districts=_district_choices(request, db))
    if not form.is_valid():
        return _account_page(request, db, 400, profile_form=form)
    services.update_profile(
        db,
        user=user,
        display_name=form.cleaned["display_name"],
        district_id=form.cleaned["district_id"],
        locale=form.cleaned["locale"],
    )
    i18n.set_locale(user.locale)
    flash(request, _("Your profile has been saved."))
    response = redirect("/account")
    _set_lang_cookie(request, response, user.locale)
    return response


@view
def account_password(request: Request, db: Session) -> Response:
    user = require(request, "account.view")
    form = ChangePasswordForm(form_of(request))
    if form.is_valid():
        try:
            services.change_password(
                db,
                user=user,
                current=form.cleaned["current_password"],
                new=form.cleaned["password"],
                keep=current_record(db, request.session),
            )
        except services.AccountError as exc:
            form.add_error(exc.field, str(exc))
    if form.errors:
        return _account_page(request, db, 400, password_form=form)
    flash(request, _("Your password has been changed. Other sessions were signed out."))
    return redirect("/account")


@view
def sign_out_everywhere(request: Request, db: Session) -> Response:
    user = require(request, "account.view")
    revoke_all(db, user.id, "everywhere")
    request.session.clear()
    flash(request, _("You have been signed out on all devices."))
    return redirect("/login")


@view
def account_delete(request: Request, db: Session) -> Response:
    user = require(request, "account.view")
    if request.method == "GET":
        return render(
            request, "app/delete.html", form=ConfirmDeleteForm(), **reauth.context(request, db, user, DELETE)
        )
    form = ConfirmDeleteForm(form_of(request))
    if form.is_valid() and reauth.confirm(request, db, user, DELETE, form):  # ASVS V7.5.1
        try:
            services.delete_account(db, user=user, settings=settings_of(request))
        except services.AccountError as exc:
            form.add_error(exc.field, str(exc))
    if form.errors:
        return render(request, "app/delete.html", 400, form=form, **reauth.context(request, db, user, DELETE))
    request.session.clear()
    flash(request, _("Your account has been deleted."))
    return redirect("/")


def _set_lang_cookie(request: Request, response: Response, locale: str) -> None:
    response.set_cookie(
        "lang",
        locale,
        max_age=365 * 86400,
        httponly=True,
        samesite="lax",
        secure=settings_of(request).https,
        path="/",
    )


@view
def language(request: Request, db: Session) -> Response:
    form = form_of(request)
    locale = form.get("locale")
    target = safe_next(str(form.get("next") or "/"))
    if locale not in i18n.LOCALES:
        return render(request, "errors/error.html", 400, status=400, message=_("Unknown language."))
    user = request.state.user
    if user is not None:
        user.locale = locale
    response = redirect(target)
    _set_lang_cookie(request, response, str(locale))
    return response


routes = [
    Route("/register", register, methods=["GET", "POST"], name="register"),
    Route("/register/sent", register_sent, name="register_sent"),
    Route("/register/confirm", confirm, name="confirm"),
    Route("/login", login, methods=["GET", "POST"], name="login"),
    Route("/logout", logout, methods=["POST"], name="logout"),
    Route("/password/forgot", forgot, methods=["GET", "POST"], name="forgot"),
    Route("/password/reset", reset, methods=["GET", "POST"], name="reset"),
    Route("/account", account, methods=["GET", "POST"], name="account"),
    Route("/account/password", account_password, methods=["POST"], name="account_password"),
    Route("/account/sessions/revoke", sign_out_everywhere, methods=["POST"], name="sign_out_everywhere"),
    Route("/account/delete", account_delete, methods=["GET", "POST"], name="account_delete"),
    Route("/language", language, methods=["POST"], name="language"),
]
