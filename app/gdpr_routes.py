"""Data-subject pages: "Download my data" (re-authenticated, single-use, session-bound download) and the
record of processing activities for staff. Logic lives in app/gdpr.py and app/gdpr_records.py."""

from __future__ import annotations

import json

from sqlmodel import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app import gdpr, gdpr_records
from app.accounts import reauth
from app.accounts.forms import ReauthForm
from app.i18n import gettext as _
from app.i18n import lazy
from app.permissions import is_staff, register, require
from app.security import TokenError
from app.sessions import current_record
from app.web import form_of, redirect, render, settings_of, view

register("gdpr.records", is_staff, "See the record of processing activities (Art. 30 GDPR)")
REAUTH = reauth.register_purpose("gdpr_export", "/account/export", lazy("Download of your data"))


@view
def export_page(request: Request, db: Session) -> Response:
    """GET: what the export holds and the re-authentication form; POST: re-authenticate (password, app code
    or e-mail confirmation, app/accounts/reauth.py), then redirect to a one-time download link (ASVS V7.5.1)."""
    user = require(request, "account.view")
    minutes = gdpr.EXPORT_TOKEN_MINUTES
    if request.method == "GET":
        return render(
            request,
            "app/gdpr_export.html",
            form=ReauthForm(),
            minutes=minutes,
            **reauth.context(request, db, user, REAUTH.name),
        )
    form = ReauthForm(form_of(request))
    if form.is_valid():
        reauth.confirm(request, db, user, REAUTH.name, form)
    if form.errors:
        ctx = reauth.context(request, db, user, REAUTH.name)
        return render(request, "app/gdpr_export.html", 400, form=form, minutes=minutes, **ctx)
    record = current_record(db, request.session)
    if record is None:  # pragma: no cover - require() found a session
        raise HTTPException(403)
    token = gdpr.issue_export_token(settings_of(request), user, record)
    return redirect(f"/account/export/{token}")


@view(long=True)
def export_download(request: Request, db: Session) -> Response:
    """The JSON export, for the session that asked for it, once, within a few minutes (CVE-2026-45377)."""
    user = require(request, "account.view")
    record = current_record(db, request.session)
    settings = settings_of(request)
    try:
        gdpr.consume_export_token(db, settings, request.path_params["token"], user, record)
    except TokenError as exc:
        if exc.reason in ("used", "expired"):
            return render(
                request,
                "app/message.html",
                410,
                title=_("Link no longer valid"),
                message=_(
                    "Download links work once and for %(minutes)s minutes. Please ask for a new one.",
                    minutes=gdpr.EXPORT_TOKEN_MINUTES,
                ),
                link="/account/export",
                link_text=_("Download my data"),
            )
        raise HTTPException(404) from None
    data = gdpr.collect(db, settings, user)
    body = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False, default=str).encode()
    return Response(
        body,
        media_type="application/json; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{gdpr.export_filename(user)}"',
            "Cache-Control": "no-store",
        },
    )


@view
def records_page(request: Request, db: Session) -> Response:
    require(request, "gdpr.records")
    return render(request, "app/gdpr_records.html", activities=gdpr_records.activities(settings_of(request)))


routes = [
    Route("/account/export", export_page, methods=["GET", "POST"], name="gdpr_export"),
    Route("/account/export/{token:str}", export_download, name="gdpr_export_download"),
    Route("/admin/processing", records_page, name="gdpr_records"),
]
