"""Outgoing mail. ``send_mail(db, settings, to=…, subject=…, body=…)`` only *queues* the mail in the
outbox table, inside the caller's transaction: a rolled-back unit of work sends nothing, a committed one
never loses its mail. app/outbox.py delivers queued mail (SMTP, or the log in development) with retries.

The SMTP connection settings come from the environment (SMTP_HOST, …) and can be overridden by an
administrator in the admin area (app/mail_settings.py); ``MailConfig`` is the effective result.
"""

from __future__ import annotations

import contextvars
import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid

from sqlmodel import Session

from app.settings import Settings

log = logging.getLogger("mitmachen.mail")

SMTP_TIMEOUT = 20
TLS_MODES = ("none", "starttls", "ssl")
BACKENDS = ("log", "smtp")
# Mail queued inside a request (or a CLI run) is reserved for delivery right after the commit by whoever
# opened the box (app.outbox.collect); the outbox loop only takes it when that reservation expires.
_reservation: contextvars.ContextVar[Reservation | None] = contextvars.ContextVar(
    "mail_reservation", default=None
)


class MailError(RuntimeError):
    pass


@dataclass
class Reservation:
    """Mail queued while this is the current reservation: its outbox ids once committed."""

    token: str
    committed: list[int]


@dataclass(frozen=True)
class MailConfig:
    backend: str = "log"
    host: str = "127.0.0.1"
    port: int = 25
    tls: str = "none"
    user: str = ""
    password: str = ""
    sender: str = "Mitmachen <noreply@localhost>"

    @classmethod
    def from_settings(cls, settings: Settings) -> MailConfig:
        return cls(
            backend=settings.mail_backend,
            host=settings.smtp_host,
            port=settings.smtp_port,
            tls=settings.smtp_tls,
            user=settings.smtp_user,
            password=settings.smtp_password,
            sender=settings.mail_sender,
        )


def _header(value: str) -> str:
    return " ".join(value.replace("\r", " ").replace("\n", " ").split())


def build_message(config: MailConfig | Settings, *, to: str, subject: str, body: str) -> EmailMessage:
    sender = config.sender if isinstance(config, MailConfig) else config.mail_sender
    msg = EmailMessage()
    msg["From"] = _header(sender)
    msg["To"] = _header(to)
    msg["Subject"] = _header(subject)
    msg["Message-ID"] = make_msgid(domain="mitmachen.local")
    msg.set_content(body)
    return msg


def deliver(config: MailConfig, *, to: str, subject: str, body: str) -> None:
    """Hand one mail to the SMTP server now (or write it to the log); raises MailError on failure."""
    msg = build_message(config, to=to, subject=subject, body=body)
    if config.backend == "log":
        log.info("mail (log backend) to=%s subject=%s\n%s", to, msg["Subject"], body)
        return
    try:
        if config.tls == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                config.host, config.port, timeout=SMTP_TIMEOUT, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(config.host, config.port, timeout=SMTP_TIMEOUT)
        with smtp:
            if config.tls == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if config.user:
                smtp.login(config.user, config.password)
            smtp.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(f"{type(exc).__name__}: {exc}"[:400]) from exc


def send_mail(db: Session, settings: Settings | None = None, *, to: str, subject: str, body: str) -> int:
    """Queue a mail in the caller's unit of work; returns the outbox id. Delivery happens after the commit
    (right after the request when one is running, otherwise by the outbox loop)."""
    from app import outbox

    return outbox.enqueue(db, to=to, subject=subject, body=body)


queue_mail = send_mail
