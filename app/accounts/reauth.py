"""Re-authentication before a sensitive action (ASVS V7.5.1): one service for every account, with or without
a password.

The method depends on what the account has, in this order:

1. ``password`` — the current password, if the account has one;
2. ``totp`` — otherwise the current code of the authenticator app, if two-factor sign-in is enrolled
   (``twofactor.verify_totp``: each time step is accepted once);
3. ``email`` — otherwise a confirmation link mailed to the account's address. The link is signed for one
   *purpose* (e.g. "gdpr_export", "delete_account"), names the user and the server-side session record that
   asked for it, is valid for ``LINK_MINUTES`` and works once. Opened in that same signed-in session it
   marks the purpose as re-authenticated in the session for ``CONFIRMED_MINUTES``; the action then goes
   ahead without a password field and uses the mark up (it cannot be used twice, not even by replaying an
   older session cookie: its link's digest is recorded as spent, app/usedtokens.py).
4. ``none`` — an account without password, authenticator app and e-mail address cannot re-authenticate.

A page uses it like this (see app/gdpr_routes.py, app/accounts/routes.py ``account_delete``,
app/accounts/twofactor_routes.py)::

    reauth.register_purpose("my_action", "/my/page", lazy("Doing my action"))
    form = MyForm(form_of(request))          # app.accounts.forms.ReauthForm or a subclass of it
    if form.is_valid() and reauth.confirm(request, db, user, "my_action", form):
        ...                                  # re-authenticated
    render(..., form=form, **reauth.context(request, db, user, "my_action"))

and the template calls the macros of ``templates/app/_reauth.html``. Failed password and code attempts are
rate-limited ("login" per account, "two_factor" per account) and sending links is ("mail").
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session
from starlette.requests import Request

from app import i18n, usedtokens
from app.accounts import twofactor
from app.forms import Form
from app.i18n import gettext as _
from app.mail import send_mail
from app.models import User, UserSession
from app.security import TokenError, new_token, sign, token_digest, unsign, verify_password
from app.sessions import current_record
from app.settings import Settings
from app.web import client_ip, rate_limit, settings_of

log = logging.getLogger("mitmachen.auth")

LINK_MINUTES = 15
CONFIRMED_MINUTES = 5
SESSION_KEY = "reauth"
# purposes of app/usedtokens.py (spent single-use tokens, by digest)
LINK_USED = "reauth-link"  # an opened link
SPENT = "reauth-spent"  # the confirmation of an opened link, used for its action
METHODS = ("password", "totp", "email", "none")


@dataclass(frozen=True)
class Purpose:
    name: str
    url: str  # the page of the action: the link leads back there
    title: str  # lazy msgid naming the action, e.g. "Download of your data"


_purposes: dict[str, Purpose] = {}


def register_purpose(name: str, url: str, title: str) -> Purpose:
    purpose = Purpose(name, url, title)
    _purposes[name] = purpose
    return purpose


def purpose(name: str) -> Purpose | None:
    return _purposes.get(name)


def method(db: Session, user: User) -> str:
    """How this account re-authenticates: "password", "totp", "email" or "none"."""
    if user.password_hash:
        return "password"
    if twofactor.is_enabled(db, user):
        return "totp"
    if user.email:
        return "email"
    return "none"


# --- the confirmation mark in the session -----------------------------------------------------------------


def _marks(request: Request) -> dict[str, Any]:
    marks = request.session.get(SESSION_KEY)
    return marks if isinstance(marks, dict) else {}


def _valid_mark(request: Request, db: Session, record: UserSession | None, name: str) -> str | None:
    """The digest of the link behind a current e-mail confirmation of ``name`` in this session, or None."""
    mark = _marks(request).get(name)
    if record is None or not isinstance(mark, dict):
        return None
    digest = mark.get("t")
    if mark.get("sid") != record.id or not isinstance(digest, str):
        return None
    if not isinstance(mark.get("until"), int | float) or mark["until"] < time.time():
        return None
    return None if usedtokens.is_spent(db, SPENT, digest) else digest


def is_confirmed(request: Request, db: Session, name: str) -> bool:
    return _valid_mark(request, db, current_record(db, request.session), name) is not None


def _drop_mark(request: Request, name: str) -> None:
    marks = dict(_marks(request))
    if marks.pop(name, None) is not None:
        request.session[SESSION_KEY] = marks


def context(request: Request, db: Session, user: User, name: str) -> dict[str, Any]:
    """Template context for ``templates/app/_reauth.html``: ``reauth`` with the method, whether an e-mail
    confirmation is current, whether the action may be submitted, and the link's lifetime."""
    how = method(db, user)
    confirmed = how in ("email", "none") and is_confirmed(request, db, name)
    return {
        "reauth": {
            "purpose": name,
            "method": how,
            "confirmed": confirmed,
            "ready": how in ("password", "totp") or confirmed,
            "email": user.email or "",
            "link_minutes": LINK_MINUTES,
            "confirmed_minutes": CONFIRMED_MINUTES,
        }
    }


def confirm(request: Request, db: Session, user: User, name: str, form: Form) -> bool:
    """Call after ``form.is_valid()``: True when the user re-authenticated for ``name`` (an e-mail
    confirmation is used up); otherwise the reason is added to ``form`` and False returned."""
    settings = settings_of(request)
    record = current_record(db, request.session)
    how = method(db, user)
    if how == "password":
        password = form.cleaned.get("password") or ""
        if not password:
            form.add_error("password", _("This field is required."))
            return False
        rate_limit(request, db, "login", user.email or str(user.id))
        if verify_password(user.password_hash, password):
            return True
        log.warning("auth reauth failed user_id=%s ip=%s method=password", user.id, client_ip(request))
        form.add_error("password", _("The password is wrong."))
        return False
    if how == "totp":
        code = form.cleaned.get("code") or ""
        if not code:
            form.add_error("code", _("This field is required."))
            return False
        rate_limit(request, db, "two_factor", f"user:{user.id}")
        if twofactor.verify_totp(db, settings, user, code):
            return True
        log.warning("auth reauth failed user_id=%s ip=%s method=totp", user.id, client_ip(request))
        form.add_error(
            "code", _("This code is not valid. Check the time on your phone and enter the current code.")
        )
        return False
    digest = _valid_mark(request, db, record, name)
    # spending is one insert against a UNIQUE constraint: of two concurrent uses of a mark, one passes
    if digest is None or not usedtokens.spend(db, SPENT, digest, _keep(CONFIRMED_MINUTES)):
        _drop_mark(request, name)
        form.add_error(
            "__all__",
            _("Please confirm it is you with the link we send to your e-mail address first.")
            if how == "email"
            else _("Your account has no password, authenticator app or e-mail address to confirm it is you."),
        )
        return False
    _drop_mark(request, name)
    log.info("auth reauth by e-mail used user_id=%s purpose=%s", user.id, name)
    return True


def _keep(minutes: int) -> dt.datetime:
    """How long a spent link or confirmation is remembered: past the longest it could still be accepted."""
    return usedtokens.keep_until(dt.timedelta(minutes=minutes))


# --- the e-mail link --------------------------------------------------------------------------------------


MAIL_SUBJECT = i18n.lazy("Please confirm: %(what)s")
MAIL_BODY = i18n.lazy(
    "Hello %(name)s,\n\nyou asked for: %(what)s. To confirm that it is you, open this link within "
    "%(minutes)s minutes, in the same browser in which you asked for it:\n\n%(link)s\n\n"
    "If this was not you, do not open the link; sign out on all devices in your account settings and "
    "tell us.\n\n%(platform)s %(city)s"
)


def _salt(name: str) -> str:
    return f"reauth.{name}"


def issue_link(settings: Settings, user: User, record: UserSession, name: str) -> str:
    """An absolute link for one confirmation of ``name`` by this user in this session."""
    token = sign(settings.secret_key, _salt(name), {"uid": user.id, "sid": record.id, "n": new_token(12)})
    return f"{settings.base_url}/account/confirm/{name}/{token}"


def send_link(request: Request, db: Session, user: User, name: str) -> None:
    """Mail a confirmation link (rate limit "mail" per account and address); only for the "email" method."""
    settings = settings_of(request)
    record = current_record(db, request.session)
    if record is None or method(db, user) != "email" or purpose(name) is None:
        raise TokenError("invalid")
    rate_limit(request, db, "mail", f"user:{user.id}", user.email or "")
    link = issue_link(settings, user, record, name)
    previous = i18n.get_locale()
    i18n.set_locale(user.locale)
    try:
        what = i18n.gettext(_purposes[name].title)
        send_mail(
            db,
            settings,
            to=user.email or "",
            subject=i18n.gettext(MAIL_SUBJECT, what=what),
            body=i18n.gettext(
                MAIL_BODY,
                name=user.display_name,
                what=what,
                minutes=LINK_MINUTES,
                link=link,
                platform=settings.platform_name,
                city=settings.city_name,
            ),
        )
    finally:
        i18n.set_locale(previous)
    log.info("auth reauth link sent user_id=%s purpose=%s", user.id, name)


def open_link(request: Request, db: Session, user: User, name: str, token: str) -> None:
    """Accept a mailed link once, for its user and purpose, in the session that asked for it, within
    LINK_MINUTES, and mark ``name`` as confirmed in this session. TokenError ("invalid", "expired",
    "session", "used") otherwise; nothing is used up by a refused attempt."""
    settings = settings_of(request)
    payload = unsign(settings.secret_key, _salt(name), token, LINK_MINUTES * 60)
    if not isinstance(payload, dict) or payload.get("uid") != user.id or purpose(name) is None:
        raise TokenError("invalid")
    record = current_record(db, request.session)
    if record is None or payload.get("sid") != record.id:
        raise TokenError("session")
    digest = token_digest(token)
    if not usedtokens.spend(db, LINK_USED, digest, _keep(LINK_MINUTES)):  # once, also under concurrency
        raise TokenError("used")
    marks = dict(_marks(request))
    marks[name] = {"sid": record.id, "until": int(time.time()) + CONFIRMED_MINUTES * 60, "t": digest}
    request.session[SESSION_KEY] = marks
    log.info("auth reauth by e-mail confirmed user_id=%s purpose=%s", user.id, name)
