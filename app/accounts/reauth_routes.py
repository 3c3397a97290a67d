"""The e-mail confirmation of app/accounts/reauth.py: "send me a confirmation link" and opening the link."""

from __future__ import annotations

from sqlmodel import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.accounts import reauth
from app.i18n import gettext as _
from app.permissions import require
from app.security import TokenError
from app.web import flash, redirect, render, view


def _purpose(request: Request) -> reauth.Purpose:
    found = reauth.purpose(request.path_params["purpose"])
    if found is None:
        raise HTTPException(404)
    return found


@view
def send(request: Request, db: Session) -> Response:
    user = require(request, "account.view")
    purpose = _purpose(request)
    try:
        reauth.send_link(request, db, user, purpose.name)
    except TokenError:  # the account re-authenticates otherwise (password, app), or no session record
        raise HTTPException(404) from None
    flash(
        request,
        _(
            "We have sent a confirmation link to %(email)s. Please open it in this browser within "
            "%(minutes)s minutes.",
            email=user.email,
            minutes=reauth.LINK_MINUTES,
        ),
    )
    return redirect(purpose.url)


@view
def open_link(request: Request, db: Session) -> Response:
    user = require(request, "account.view")
    purpose = _purpose(request)
    try:
        reauth.open_link(request, db, user, purpose.name, request.path_params["token"])
    except TokenError as exc:
        if exc.reason == "invalid":
            raise HTTPException(404) from None
        messages = {
            "session": (
                403,
                _(
                    "This link only works in the browser in which you asked for it, while you are signed in "
                    "there. Please ask for a new link in this browser."
                ),
            ),
            "used": (410, _("This link has already been used. Please ask for a new one.")),
            "expired": (
                410,
                _(
                    "Confirmation links work for %(minutes)s minutes. Please ask for a new one.",
                    minutes=reauth.LINK_MINUTES,
                ),
            ),
        }
        status, message = messages[exc.reason]
        return render(
            request,
            "app/message.html",
            status,
            title=_("Link not valid"),
            message=message,
            link=purpose.url,
            link_text=_("Back"),
        )
    flash(
        request,
        _(
            "Thank you, it is confirmed. Please finish within %(minutes)s minutes.",
            minutes=reauth.CONFIRMED_MINUTES,
        ),
    )
    return redirect(purpose.url)


routes = [
    Route("/account/confirm/{purpose:str}", send, methods=["POST"], name="reauth_send"),
    Route("/account/confirm/{purpose:str}/{token:str}", open_link, name="reauth_open"),
]
