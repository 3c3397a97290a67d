"""Mail settings an administrator can change in the admin area (issue #7): delivery, SMTP server, port,
TLS mode, login, password and sender. Stored in ``site_setting`` rows that override the environment's
defaults; the SMTP password is encrypted at rest with a key derived from SECRET_KEY and never shown back
(the form offers "unchanged", a new value, or "clear"). A test mail goes through the outbox like any other.
"""

from __future__ import annotations

import base64
import logging
import re
from email.utils import parseaddr
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import delete, select, update
from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app import forms
from app.database import utcnow
from app.forms import FieldError, Form
from app.i18n import gettext as _
from app.i18n import ngettext
from app.mail import BACKENDS, TLS_MODES, MailConfig, send_mail
from app.ops_models import MailOutbox, SiteSetting
from app.permissions import is_admin, register, require
from app.settings import Settings
from app.web import flash, form_of, redirect, render, settings_of, view

log = logging.getLogger("mitmachen.admin")

register("admin.mail", is_admin, "Change the mail server settings, send a test mail, retry failed mail")

PREFIX = "mail."
FIELDS = ("backend", "smtp_host", "smtp_port", "smtp_tls", "smtp_user", "smtp_password", "sender")
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)$")


# --- storage --------------------------------------------------------------------------------------------


def _fernet(settings: Settings) -> Fernet:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"mitmachen-site-setting", info=b"smtp-password"
    ).derive(settings.secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(settings: Settings, value: str) -> str:
    return _fernet(settings).encrypt(value.encode()).decode()


def decrypt(settings: Settings, token: str) -> str | None:
    """The plain value, or None when it cannot be decrypted (SECRET_KEY changed, or tampering)."""
    try:
        return _fernet(settings).decrypt(token.encode()).decode()
    except (InvalidToken, ValueError):
        return None


def stored(db: Session) -> dict[str, str]:
    rows = db.execute(select(SiteSetting.key, SiteSetting.value).where(SiteSetting.key.startswith(PREFIX)))
    return {key.removeprefix(PREFIX): value for key, value in rows}


def effective_config(db: Session, settings: Settings) -> MailConfig:
    """The environment's mail settings with the admin's overrides applied."""
    base = MailConfig.from_settings(settings)
    saved = stored(db)
    if not saved:
        return base
    password = base.password
    if "smtp_password" in saved:
        password = decrypt(settings, saved["smtp_password"]) if saved["smtp_password"] else ""
        if password is None:
            log.error("the stored SMTP password cannot be decrypted (SECRET_KEY changed?); using none")
            password = ""
    try:
        port = int(saved.get("smtp_port", base.port))
    except ValueError:
        port = base.port
    return MailConfig(
        backend=saved.get("backend", base.backend),
        host=saved.get("smtp_host", base.host),
        port=port,
        tls=saved.get("smtp_tls", base.tls),
        user=saved.get("smtp_user", base.user),
        password=password,
        sender=saved.get("sender", base.sender),
    )


def save(db: Session, values: dict[str, str], *, actor_id: int | None) -> None:
    rows = db.execute(select(SiteSetting).where(SiteSetting.key.startswith(PREFIX))).scalars()
    existing = {row.key: row for row in rows}
    now = utcnow()
    for name, value in values.items():
        key = PREFIX + name
        row = existing.get(key)
        if row is None:
            db.add(SiteSetting(key=key, value=value, updated_at=now, updated_by_id=actor_id))
        else:
            row.value, row.updated_at, row.updated_by_id = value, now, actor_id
    db.flush()


def reset(db: Session) -> None:
    db.execute(delete(SiteSetting).where(SiteSetting.key.startswith(PREFIX)))


# --- the admin page -------------------------------------------------------------------------------------


def _no_newlines(value: str) -> str:
    if "\r" in value or "\n" in value or "\x00" in value:
        raise FieldError(_("Line breaks are not allowed here."))
    return value


class MailSettingsForm(Form):
    fields = (
        "backend",
        "smtp_host",
        "smtp_port",
        "smtp_tls",
        "smtp_user",
        "smtp_password",
        "clear_password",
        "sender",
    )
    secret_fields = ("smtp_password",)

    def clean_backend(self, v: Any) -> str:
        return forms.choice(v, list(BACKENDS))

    def clean_smtp_host(self, v: Any) -> str:
        host = forms.text(v, min_len=1, max_len=253)
        if not _HOST.match(host):
            raise FieldError(_("Please enter a host name or an IP address."))
        return host

    def clean_smtp_port(self, v: Any) -> int:
        try:
            port = int(str(v).strip())
        except ValueError:
            port = 0
        if not 1 <= port <= 65535:
            raise FieldError(_("Please enter a port between 1 and 65535."))
        return port

    def clean_smtp_tls(self, v: Any) -> str:
        return forms.choice(v, list(TLS_MODES))

    def clean_smtp_user(self, v: Any) -> str:
        return _no_newlines(forms.text(v, required=False, max_len=200))

    def clean_smtp_password(self, v: Any) -> str:
        value = v if isinstance(v, str) else ""
        if len(value) > 500:
            raise FieldError(_("At most %(n)s characters, please.", n=500))
        return _no_newlines(value)

    def clean_clear_password(self, v: Any) -> bool:
        if v not in ("", "on", None):
            raise FieldError(_("Please choose one of the options."))
        return v == "on"

    def clean_sender(self, v: Any) -> str:
        sender = _no_newlines(forms.text(v, min_len=3, max_len=200))
        _name, address = parseaddr(sender)
        try:
            forms.email(address)
        except FieldError:
            raise FieldError(
                _("Please enter an address such as „Mitmachen <noreply@example.org>“.")
            ) from None
        return sender

    def clean(self) -> None:
        if self.cleaned.get("clear_password") and self.cleaned.get("smtp_password"):
            self.add_error("smtp_password", _("Either enter a new password or clear it, not both."))


class TestMailForm(Form):
    fields = ("to",)

    def clean_to(self, v: Any) -> str:
        return forms.email(v)


def _page(
    request: Request,
    db: Session,
    status: int = 200,
    *,
    form: MailSettingsForm | None = None,
    test_form: TestMailForm | None = None,
) -> Response:
    from app import outbox

    settings = settings_of(request)
    config = effective_config(db, settings)
    saved = stored(db)
    if form is None:
        form = MailSettingsForm(
            initial={
                "backend": config.backend,
                "smtp_host": config.host,
                "smtp_port": config.port,
                "smtp_tls": config.tls,
                "smtp_user": config.user,
                "sender": config.sender,
            }
        )
    user = request.state.user
    test_form = test_form or TestMailForm(initial={"to": user.email or ""})
    password_state = "unset"  # noqa: S105 a state label
    if saved.get("smtp_password"):
        password_state = "set" if decrypt(settings, saved["smtp_password"]) is not None else "undecryptable"  # noqa: S105 a state label
    elif "smtp_password" not in saved and settings.smtp_password:
        password_state = "env"  # noqa: S105 a state label
    problems = list(
        db.execute(
            select(MailOutbox)
            .where(MailOutbox.sent_at.is_(None), MailOutbox.last_error != "")  # type: ignore[union-attr]
            .order_by(MailOutbox.id.desc())  # type: ignore[union-attr]
            .limit(10)
        ).scalars()
    )
    return render(
        request,
        "app/admin/mail.html",
        status,
        form=form,
        test_form=test_form,
        overridden=bool(saved),
        password_state=password_state,
        stats=outbox.stats(db),
        problems=problems,
        backends=[
            ("smtp", _("Send with the SMTP server")),
            ("log", _("Only write to the log (development)")),
        ],
        tls_modes=[("none", _("none")), ("starttls", "STARTTLS"), ("ssl", "SSL/TLS")],
    )


@view
def mail_settings(request: Request, db: Session) -> Response:
    actor = require(request, "admin.mail")
    if request.method == "GET":
        return _page(request, db)
    form = MailSettingsForm(form_of(request))
    if not form.is_valid():
        return _page(request, db, 400, form=form)
    settings = settings_of(request)
    values = {name: str(form.cleaned[name]) for name in FIELDS if name != "smtp_password"}
    if form.cleaned["clear_password"]:
        values["smtp_password"] = ""
    elif form.cleaned["smtp_password"]:
        values["smtp_password"] = encrypt(settings, form.cleaned["smtp_password"])
    save(db, values, actor_id=actor.id)
    log.info(
        "admin user_id=%s changed the mail settings: %s",
        actor.id,
        ", ".join(sorted(values)),
    )
    flash(request, _("The mail settings have been saved."))
    return redirect("/admin/mail")


@view
def mail_reset(request: Request, db: Session) -> Response:
    actor = require(request, "admin.mail")
    reset(db)
    log.info("admin user_id=%s reset the mail settings to the environment's", actor.id)
    flash(request, _("The mail settings from the server configuration apply again."))
    return redirect("/admin/mail")


@view
def mail_test(request: Request, db: Session) -> Response:
    actor = require(request, "admin.mail")
    form = TestMailForm(form_of(request))
    if not form.is_valid():
        return _page(request, db, 400, test_form=form)
    settings = settings_of(request)
    send_mail(
        db,
        settings,
        to=form.cleaned["to"],
        subject=_("Test mail from %(platform)s", platform=settings.platform_name),
        body=_(
            "This is a test mail sent from the administration area of %(platform)s %(city)s.\n\n"
            "If you can read it, the mail settings work.",
            platform=settings.platform_name,
            city=settings.city_name,
        )
        + "\n",
    )
    log.info("admin user_id=%s queued a test mail", actor.id)
    flash(
        request,
        _(
            "A test mail to %(to)s has been queued; it is sent in a moment. Failures are listed below.",
            to=form.cleaned["to"],
        ),
    )
    return redirect("/admin/mail")


@view
def mail_retry(request: Request, db: Session) -> Response:
    actor = require(request, "admin.mail")
    now = utcnow()
    count = db.execute(
        update(MailOutbox)
        .where(MailOutbox.failed_at.is_not(None), MailOutbox.sent_at.is_(None))  # type: ignore[union-attr]
        .values(failed_at=None, attempts=0, next_attempt_at=now, locked_until=None, claimed_by=None)
    ).rowcount
    log.info("admin user_id=%s retried %s failed mails", actor.id, count)
    if count:
        from app import outbox

        db.info[outbox.WAKE_KEY] = True
    flash(
        request,
        ngettext(
            "%(num)s failed mail will be sent again.",
            "%(num)s failed mails will be sent again.",
            count or 0,
        ),
    )
    return redirect("/admin/mail")


routes = [
    Route("/admin/mail", mail_settings, methods=["GET", "POST"], name="admin_mail"),
    Route("/admin/mail/reset", mail_reset, methods=["POST"], name="admin_mail_reset"),
    Route("/admin/mail/test", mail_test, methods=["POST"], name="admin_mail_test"),
    Route("/admin/mail/retry", mail_retry, methods=["POST"], name="admin_mail_retry"),
]
