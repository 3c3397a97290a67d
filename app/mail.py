"""Outgoing mail: SMTP (host, port, TLS mode, sender from settings) or, in development, the log."""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid

from app.settings import Settings

log = logging.getLogger("mitmachen.mail")


class MailError(RuntimeError):
    pass


def build_message(settings: Settings, *, to: str, subject: str, body: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.mail_sender
    msg["To"] = to
    msg["Subject"] = subject.replace("\r", " ").replace("\n", " ")
    msg["Message-ID"] = make_msgid(domain="mitmachen.local")
    msg.set_content(body)
    return msg


def send_mail(settings: Settings, *, to: str, subject: str, body: str) -> None:
    msg = build_message(settings, to=to, subject=subject, body=body)
    if settings.mail_backend == "log":
        log.info("mail (log backend) to=%s subject=%s\n%s", to, msg["Subject"], body)
        return
    try:
        if settings.smtp_tls == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                settings.smtp_host, settings.smtp_port, timeout=20, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=20)
        with smtp:
            if settings.smtp_tls == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password)
            smtp.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        log.error("mail to %s failed: %s", to, exc)
        raise MailError(str(exc)) from exc
