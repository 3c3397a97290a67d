"""Account use cases. Plain functions with keyword-only arguments; they never commit (the request's
unit of work does) and raise domain errors that routes map to messages."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging

from sqlalchemy import func, or_, select
from sqlmodel import Session

from app import events, i18n
from app.accounts.verification import clear_verification
from app.database import utcnow
from app.mail import send_mail
from app.models import Role, User
from app.security import (
    TokenError,
    hash_password,
    password_needs_rehash,
    sign,
    unsign,
    verify_password,
)
from app.sessions import revoke_all
from app.settings import Settings

log = logging.getLogger("mitmachen.accounts")


class AccountError(Exception):
    """A use case refused; ``field`` names the form field the message belongs to."""

    def __init__(self, message: str, field: str = "__all__"):
        super().__init__(message)
        self.field = field


def find_by_email(db: Session, email: str) -> User | None:
    return db.execute(select(User).where(User.email == email.lower())).scalar_one_or_none()


def _mail(db: Session, settings: Settings, user: User, subject: str, body: str, **variables: object) -> None:
    """Queue a mail in the recipient's language (sent once the unit of work commits)."""
    previous = i18n.get_locale()
    i18n.set_locale(user.locale)
    try:
        send_mail(
            db,
            settings,
            to=user.email or "",
            subject=i18n.gettext(subject, **variables),
            body=i18n.gettext(body, **variables),
        )
    finally:
        i18n.set_locale(previous)


CONFIRM_SUBJECT = i18n.lazy("Please confirm your e-mail address for %(platform)s")
CONFIRM_BODY = i18n.lazy(
    "Hello %(name)s,\n\nplease confirm your e-mail address by opening this link within %(hours)s hours:\n\n"
    "%(link)s\n\nIf you did not register, you can ignore this message.\n\n%(platform)s %(city)s"
)
ALREADY_SUBJECT = i18n.lazy("Registration attempt for your %(platform)s account")
ALREADY_BODY = i18n.lazy(
    "Hello %(name)s,\n\nsomeone (perhaps you) tried to register again with this e-mail address. "
    "You already have an account. If you forgot your password, reset it here:\n\n%(link)s\n\n"
    "%(platform)s %(city)s"
)
RESET_SUBJECT = i18n.lazy("Reset your %(platform)s password")
RESET_BODY = i18n.lazy(
    "Hello %(name)s,\n\nto choose a new password open this link within %(minutes)s minutes:\n\n%(link)s\n\n"
    "If you did not ask for this, ignore this message; your password stays as it is.\n\n%(platform)s %(city)s"
)


def _common(settings: Settings, user: User) -> dict[str, object]:
    return {"name": user.display_name, "platform": settings.platform_name, "city": settings.city_name}


def send_confirmation(db: Session, settings: Settings, user: User) -> None:
    token = sign(settings.secret_key, "confirm", {"uid": user.id, "email": user.email})
    link = f"{settings.base_url}/register/confirm?token={token}"
    _mail(
        db,
        settings,
        user,
        CONFIRM_SUBJECT,
        CONFIRM_BODY,
        link=link,
        hours=settings.email_token_hours,
        **_common(settings, user),
    )


def register(
    db: Session, settings: Settings, *, email: str, password: str, display_name: str, locale: str
) -> User | None:
    """Create an unconfirmed account and mail the confirmation link.

    If the address is taken, nothing is written and the owner gets a notice instead; the caller shows
    the same answer either way, so registration reveals nothing about who has an account."""
    existing = find_by_email(db, email)
    if existing is not None:
        link = f"{settings.base_url}/password/forgot"
        _mail(db, settings, existing, ALREADY_SUBJECT, ALREADY_BODY, link=link, **_common(settings, existing))
        return None
    user = User(
        email=email.lower(),
        password_hash=hash_password(password),
        display_name=display_name,
        locale=locale,
        role=Role.RESIDENT.value,
        password_changed_at=utcnow(),
    )
    db.add(user)
    db.flush()
    send_confirmation(db, settings, user)
    log.info("account registered user_id=%s", user.id)
    return user


def confirm_email(db: Session, settings: Settings, *, token: str) -> User:
    payload = unsign(settings.secret_key, "confirm", token, settings.email_token_hours * 3600)
    user = db.get(User, payload.get("uid")) if isinstance(payload, dict) else None
    if user is None or user.is_deleted or user.email != payload.get("email"):
        raise TokenError("invalid")
    if user.email_confirmed_at is None:
        user.email_confirmed_at = utcnow()
    return user


class LoginFailed(AccountError):
    pass


class NotConfirmed(AccountError):
    pass


def authenticate(db: Session, *, email: str, password: str) -> User:
    """The user for these credentials; one generic error for unknown e-mail and wrong password."""
    user = find_by_email(db, email)
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or user.is_deleted:
        raise LoginFailed(i18n.gettext("E-mail address or password is wrong."))
    if user.is_suspended():
        raise LoginFailed(
            i18n.gettext(
                "This account is suspended until %(date)s.", date=i18n.format_dt(user.suspended_until)
            )
        )
    if not user.is_confirmed:
        raise NotConfirmed(
            i18n.gettext("Please confirm your e-mail address first. We have sent you a new link.")
        )
    if user.password_hash and password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def _password_fingerprint(user: User) -> str:
    return hashlib.sha256((user.password_hash or "").encode()).hexdigest()[:16]


def request_password_reset(db: Session, settings: Settings, *, email: str) -> None:
    """Mail a reset link if the account exists; silent otherwise (no enumeration)."""
    user = find_by_email(db, email)
    if user is None or user.is_deleted:
        return
    token = sign(settings.secret_key, "reset", {"uid": user.id, "fp": _password_fingerprint(user)})
    link = f"{settings.base_url}/password/reset?token={token}"
    _mail(
        db,
        settings,
        user,
        RESET_SUBJECT,
        RESET_BODY,
        link=link,
        minutes=settings.reset_token_minutes,
        **_common(settings, user),
    )


def user_for_reset(db: Session, settings: Settings, *, token: str) -> User:
    """The user a reset token belongs to. Tokens expire and die once the password changes (single use)."""
    payload = unsign(settings.secret_key, "reset", token, settings.reset_token_minutes * 60)
    user = db.get(User, payload.get("uid")) if isinstance(payload, dict) else None
    if user is None or user.is_deleted or payload.get("fp") != _password_fingerprint(user):
        raise TokenError("invalid")
    return user


def set_password(db: Session, *, user: User, password: str, keep=None, reason: str = "password") -> None:
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()
    if user.email_confirmed_at is None:  # the reset link proved the address
        user.email_confirmed_at = utcnow()
    revoke_all(db, user.id, reason, keep=keep)


def change_password(db: Session, *, user: User, current: str, new: str, keep=None) -> None:
    if not verify_password(user.password_hash, current):
        raise AccountError(i18n.gettext("The current password is wrong."), "current_password")
    set_password(db, user=user, password=new, keep=keep)


def update_profile(
    db: Session, *, user: User, display_name: str, district_id: int | None, locale: str
) -> None:
    user.display_name = display_name
    user.district_id = district_id
    user.locale = locale


def delete_account(
    db: Session, *, user: User, password: str | None = None, settings: Settings | None = None
) -> None:
    """Anonymise the account: personal data goes, the row stays so public content keeps a neutral author.
    With ``settings``, app/gdpr.py first applies DELETED_CONTENT and the feature packages' rules.
    ``password`` is checked when given; without it the caller has re-authenticated the user
    (app/accounts/reauth.py, as the account page does)."""
    if password is not None and not verify_password(user.password_hash, password):
        raise AccountError(i18n.gettext("The password is wrong."), "password")
    if settings is not None:
        from app import gdpr

        gdpr.erase_related(db, settings, user)
    revoke_all(db, user.id, "deleted")
    user.is_name_public = False
    user.email = None
    user.password_hash = None
    user.display_name = "—"
    user.district_id = None
    clear_verification(user)
    user.deleted_at = utcnow()
    log.info("account deleted user_id=%s", user.id)


def change_role(db: Session, *, actor: User, target: User, role: str) -> None:
    if role not in {r.value for r in Role}:
        raise AccountError(i18n.gettext("Please choose one of the options."), "role")
    if target.id == actor.id and role != Role.ADMIN.value:
        raise AccountError(i18n.gettext("You cannot take away your own administrator role."), "role")
    if target.role != role:
        previous, target.role = target.role, role
        revoke_all(db, target.id, "role")
        events.publish(db, "role.changed", user_id=target.id, role=role, previous=previous, actor_id=actor.id)
        log.info("role changed user_id=%s role=%s by=%s", target.id, role, actor.id)


def suspend(db: Session, *, actor: User, target: User, days: int) -> None:
    if target.id == actor.id:
        raise AccountError(i18n.gettext("You cannot suspend yourself."), "days")
    if days <= 0:
        target.suspended_until = None
    else:
        target.suspended_until = utcnow() + dt.timedelta(days=days)
        revoke_all(db, target.id, "suspended")
    events.publish(
        db, "account.suspended", user_id=target.id, until=target.suspended_until, actor_id=actor.id
    )
    log.info("suspension user_id=%s days=%s by=%s", target.id, days, actor.id)


def create_admin(db: Session, *, email: str, password: str, display_name: str = "Administrator") -> User:
    user = find_by_email(db, email)
    if user is None:
        user = User(email=email.lower(), display_name=display_name)
        db.add(user)
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()
    user.role = Role.ADMIN.value
    user.email_confirmed_at = user.email_confirmed_at or utcnow()
    db.flush()
    if user.id is not None:
        revoke_all(db, user.id, "role")
    return user


def search_users(db: Session, *, query: str = "", role: str = "", offset: int = 0, limit: int = 50):
    stmt = select(User).where(User.deleted_at.is_(None))
    if query:
        escaped = query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        like = f"%{escaped}%"
        stmt = stmt.where(
            or_(
                func.lower(User.email).like(like, escape="\\"),
                func.lower(User.display_name).like(like, escape="\\"),
            )
        )
    if role:
        stmt = stmt.where(User.role == role)
    total = db.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    rows = list(db.execute(stmt.order_by(User.id).offset(offset).limit(limit)).scalars())
    return rows, total
