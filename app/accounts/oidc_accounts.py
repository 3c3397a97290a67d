"""What a validated OpenID Connect assertion means for accounts: sign in, link, create, or ask for proof.

Plain functions; they never commit (the request's unit of work does) and raise ``AccountError`` for the
routes to show. The identity is (issuer, sub) (ASVS V6.8.1): a returning person is found by it even when
their e-mail address changed at the provider, and an e-mail address alone never signs anybody in: when it
matches an existing account, that account must first prove its password or its mailbox.
"""

from __future__ import annotations

import dataclasses
import logging

from sqlalchemy import func, select
from sqlmodel import Session

from app import i18n
from app.accounts import services
from app.accounts.oidc import Assertion, Provider
from app.accounts.oidc_models import OidcIdentity
from app.accounts.services import AccountError
from app.database import utcnow
from app.models import Role, User
from app.security import sign, unsign
from app.settings import Settings

log = logging.getLogger("mitmachen.oidc")

LINK_PURPOSE = "oidc-link"


@dataclasses.dataclass
class Outcome:
    """``kind``: "signed_in" (known identity), "created" (new account), "linked" (link flow finished)
    or "needs_proof" (the e-mail address belongs to ``user``, who must prove it before linking)."""

    kind: str
    user: User


def find_identity(db: Session, issuer: str, subject: str) -> OidcIdentity | None:
    return db.execute(
        select(OidcIdentity).where(OidcIdentity.issuer == issuer, OidcIdentity.subject == subject)
    ).scalar_one_or_none()


def identities_of(db: Session, user_id: int) -> list[OidcIdentity]:
    return list(
        db.execute(
            select(OidcIdentity).where(OidcIdentity.user_id == user_id).order_by(OidcIdentity.id)
        ).scalars()
    )


def sign_in_methods(db: Session, user: User) -> int:
    """How many ways this account can sign in: its password (if set) and its linked identities."""
    count = db.execute(
        select(func.count()).select_from(OidcIdentity).where(OidcIdentity.user_id == user.id)
    ).scalar_one()
    return count + (1 if user.password_hash else 0)


def link(db: Session, *, user: User, assertion: Assertion) -> OidcIdentity:
    """Link (issuer, sub) to ``user``; refused if it already belongs to another account."""
    identity = find_identity(db, assertion.issuer, assertion.subject)
    if identity is not None:
        if identity.user_id != user.id:
            raise AccountError(
                i18n.gettext("This sign-in is already connected to another account of this platform.")
            )
        return identity
    identity = OidcIdentity(
        user_id=user.id, provider=assertion.provider, issuer=assertion.issuer, subject=assertion.subject
    )
    db.add(identity)
    db.flush()
    log.info("oidc identity linked user_id=%s provider=%s", user.id, assertion.provider)
    return identity


def unlink(db: Session, *, user: User, identity_id: int) -> OidcIdentity:
    """Remove one of the user's identities, but never the last way to sign in."""
    identity = db.get(OidcIdentity, identity_id)
    if identity is None or identity.user_id != user.id:
        raise AccountError(i18n.gettext("This sign-in method does not exist."))
    if sign_in_methods(db, user) <= 1:
        raise AccountError(
            i18n.gettext(
                "This is your only way to sign in. Set a password (via “Forgot your password?”) "
                "or connect another provider first."
            )
        )
    db.delete(identity)
    db.flush()
    log.info("oidc identity unlinked user_id=%s provider=%s", user.id, identity.provider)
    return identity


def apply_verification(db: Session, provider: Provider, user: User, assertion: Assertion) -> bool:
    """Record a resident verification when the provider is identity-verified and gave birth date and postal
    code; only when something changed, so repeated sign-ins do not pile up verification events."""
    if not provider.verified or assertion.postal_code is None:
        return False
    if assertion.birth_date is None and assertion.birth_year is None:
        return False
    from app.accounts.verification import mark_verified, normalise_postal_code

    unchanged = (
        user.resident_verified_at is not None
        and user.resident_verification_method == provider.method
        and user.verified_birth_date == assertion.birth_date
        and user.verified_birth_year == (assertion.birth_year or getattr(assertion.birth_date, "year", None))
        and user.verified_postal_code == normalise_postal_code(assertion.postal_code)
    )
    if unchanged:
        return False
    try:
        mark_verified(
            db,
            user,
            method=provider.method,
            birth_date=assertion.birth_date,
            birth_year=None if assertion.birth_date else assertion.birth_year,
            postal_code=assertion.postal_code,
        )
    except ValueError as exc:  # implausible data from the provider: sign-in goes on, unverified
        log.warning("oidc verification refused user_id=%s provider=%s: %s", user.id, provider.key, exc)
        return False
    return True


def _check_usable(user: User) -> None:
    if user.is_suspended():
        raise AccountError(
            i18n.gettext(
                "This account is suspended until %(date)s.", date=i18n.format_dt(user.suspended_until)
            )
        )


def create_account(db: Session, settings: Settings, *, provider: Provider, assertion: Assertion) -> User:
    """A new account from the provider's claims, with no password. The e-mail address counts as confirmed
    only if the provider asserts ``email_verified``; otherwise a confirmation link is mailed."""
    confirmed = assertion.email is not None and assertion.email_verified
    user = User(
        email=assertion.email,
        password_hash=None,
        display_name=(assertion.name or i18n.gettext("Participant"))[:80],
        role=Role.RESIDENT.value,
        locale=i18n.get_locale(),
        email_confirmed_at=utcnow() if confirmed else None,
    )
    db.add(user)
    db.flush()
    link(db, user=user, assertion=assertion)
    if assertion.email and not confirmed:
        services.send_confirmation(db, settings, user)
    log.info("account created by oidc user_id=%s provider=%s", user.id, provider.key)
    return user


def resolve(
    db: Session, settings: Settings, *, provider: Provider, assertion: Assertion, current_user: User | None
) -> Outcome:
    """Decide what a validated assertion does (see the module docstring)."""
    identity = find_identity(db, assertion.issuer, assertion.subject)
    if assertion.link_user_id is not None:
        if current_user is None or current_user.id != assertion.link_user_id:
            raise AccountError(
                i18n.gettext(
                    "You were signed out while connecting the provider. Please log in and try again."
                )
            )
        link(db, user=current_user, assertion=assertion)
        apply_verification(db, provider, current_user, assertion)
        return Outcome("linked", current_user)
    if identity is not None:
        user = db.get(User, identity.user_id)
        if user is None or user.is_deleted:  # the account was deleted: the identity is free again
            db.delete(identity)
            db.flush()
        else:
            _check_usable(user)
            identity.last_login_at = utcnow()
            apply_verification(db, provider, user, assertion)
            return Outcome("signed_in", user)
    if assertion.email:
        existing = services.find_by_email(db, assertion.email)
        if existing is not None and not existing.is_deleted:
            return Outcome("needs_proof", existing)
    user = create_account(db, settings, provider=provider, assertion=assertion)
    apply_verification(db, provider, user, assertion)
    return Outcome("created", user)


def prove_with_password(
    db: Session, *, user: User, password: str, provider: Provider, assertion: Assertion
) -> User:
    """Link after the existing account proved its password (the same checks as the login form)."""
    proven = services.authenticate(db, email=user.email or "", password=password)
    if proven.id != user.id:
        raise services.LoginFailed(i18n.gettext("E-mail address or password is wrong."))
    link(db, user=user, assertion=assertion)
    find_identity(db, assertion.issuer, assertion.subject).last_login_at = utcnow()
    apply_verification(db, provider, user, assertion)
    return user


LINK_SUBJECT = i18n.lazy("Connect %(provider)s with your %(platform)s account")
LINK_BODY = i18n.lazy(
    "Hello %(name)s,\n\nsomeone (probably you) signed in with %(provider)s using this e-mail address and asked "
    "to connect that sign-in with your account. To allow it, open this link within %(hours)s hours:\n\n"
    "%(link)s\n\nIf this was not you, ignore this message: nothing will be connected.\n\n%(platform)s %(city)s"
)


def send_link_mail(
    db: Session, settings: Settings, *, user: User, provider: Provider, assertion: Assertion
) -> None:
    """Mail the account's owner a link that connects the identity once opened (proof of the mailbox)."""
    token = sign(
        settings.secret_key,
        LINK_PURPOSE,
        {
            "uid": user.id,
            "email": user.email,
            "p": provider.key,
            "iss": assertion.issuer,
            "sub": assertion.subject,
        },
    )
    services._mail(
        db,
        settings,
        user,
        LINK_SUBJECT,
        LINK_BODY,
        link=f"{settings.base_url}/login/oidc/connect/confirm?token={token}",
        provider=provider.name,
        hours=settings.email_token_hours,
        **services._common(settings, user),
    )


def confirm_link_mail(
    db: Session, settings: Settings, providers: dict[str, Provider], *, token: str
) -> tuple[User, Provider]:
    """Link the identity named in a mailed token (``TokenError`` when expired or invalid)."""
    from app.security import TokenError

    payload = unsign(settings.secret_key, LINK_PURPOSE, token, settings.email_token_hours * 3600)
    if not isinstance(payload, dict):
        raise TokenError("invalid")
    user = db.get(User, payload.get("uid"))
    provider = providers.get(str(payload.get("p")))
    if (
        user is None
        or user.is_deleted
        or user.email != payload.get("email")
        or provider is None
        or provider.issuer != payload.get("iss")
        or not isinstance(payload.get("sub"), str)
    ):
        raise TokenError("invalid")
    assertion = Assertion(provider=provider.key, issuer=provider.issuer, subject=payload["sub"])
    link(db, user=user, assertion=assertion)
    if user.email_confirmed_at is None:  # the link proved the mailbox
        user.email_confirmed_at = utcnow()
    return user, provider
