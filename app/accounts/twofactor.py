"""Two-factor sign-in: time-based one-time passwords (RFC 6238, pyotp) and single-use recovery codes.

``sign_in`` is the single place where a primary authentication (password, OpenID Connect) becomes a
session. A user with TOTP enabled, or whose role requires it (TWO_FACTOR_REQUIRED_ROLES), first gets a
short-lived *pending sign-in* in this browser's session cookie and is sent to the second-factor page or
to a forced enrolment; everyone else gets a fresh session at once (ASVS V7.2.4).

The other functions are plain use cases without HTTP: enrol and confirm, verify a code (each time step is
accepted once, ASVS V6.5.1), recovery codes, disable, and the administrator's reset for a lost device.
TOTP secrets are encrypted at rest with a key derived from SECRET_KEY (rotating SECRET_KEY therefore
means everyone re-enrols; an administrator resets their second factor).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import logging
import secrets
import time

import pyotp
import segno
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from markupsafe import Markup
from sqlalchemy import delete, func, select, update
from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response

from app.accounts.twofactor_models import RecoveryCode, TotpCredential
from app.database import utcnow
from app.models import User
from app.sessions import revoke_all, start_session
from app.settings import Settings
from app.web import client_ip, redirect, settings_of

log = logging.getLogger("mitmachen.auth")

PENDING_KEY = "pending_2fa"
PENDING_SECONDS = 300
STEP_SECONDS = 30
VALID_WINDOW = 1  # the previous and the next time step are accepted too (clock drift)
RECOVERY_CODE_COUNT = 10
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i
RECOVERY_GROUPS = 4
RECOVERY_GROUP_LEN = 4  # 16 characters of a 30-letter alphabet: 78 bits


class TwoFactorError(Exception):
    """A second-factor use case refused."""


# --- who needs a second factor ----------------------------------------------------------------------------


def role_requires_2fa(settings: Settings, user: User) -> bool:
    return user.role in settings.two_factor_roles


def credential(db: Session, user_id: int) -> TotpCredential | None:
    return db.execute(select(TotpCredential).where(TotpCredential.user_id == user_id)).scalar_one_or_none()


def active_credential(db: Session, user_id: int) -> TotpCredential | None:
    cred = credential(db, user_id)
    return cred if cred is not None and cred.is_active else None


def is_enabled(db: Session, user: User) -> bool:
    return user.id is not None and active_credential(db, user.id) is not None


def enabled_user_ids(db: Session, user_ids: list[int]) -> set[int]:
    if not user_ids:
        return set()
    rows = db.execute(
        select(TotpCredential.user_id).where(
            TotpCredential.user_id.in_(user_ids), TotpCredential.confirmed_at.is_not(None)
        )
    ).scalars()
    return set(rows)


# --- secrets at rest --------------------------------------------------------------------------------------


def _fernet(settings: Settings) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"mitmachen totp secret v1").derive(
        settings.secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt_secret(settings: Settings, secret: str) -> str:
    return _fernet(settings).encrypt(secret.encode()).decode()


def decrypt_secret(settings: Settings, token: str) -> str:
    try:
        return _fernet(settings).decrypt(token.encode()).decode()
    except InvalidToken as exc:  # SECRET_KEY changed: the credential cannot be used any more
        raise TwoFactorError("the TOTP secret cannot be decrypted (SECRET_KEY changed?)") from exc


# --- enrolment --------------------------------------------------------------------------------------------


def begin_enrolment(db: Session, settings: Settings, user: User, *, fresh: bool = False) -> str:
    """The secret being enrolled (created if there is none, or anew with ``fresh``). The active secret,
    if any, stays valid until a code from the new one is confirmed."""
    cred = credential(db, user.id)
    if cred is None:
        cred = TotpCredential(user_id=user.id)
        db.add(cred)
    if cred.pending_secret and not fresh:
        try:
            return decrypt_secret(settings, cred.pending_secret)
        except TwoFactorError:
            pass
    secret = pyotp.random_base32(32)  # 160 bits, as RFC 4226 recommends
    cred.pending_secret = encrypt_secret(settings, secret)
    cred.pending_created_at = utcnow()
    db.flush()
    return secret


def provisioning_uri(settings: Settings, user: User, secret: str) -> str:
    issuer = f"{settings.platform_name} {settings.city_name}".strip()
    return pyotp.TOTP(secret).provisioning_uri(name=user.email or user.display_name, issuer_name=issuer)


def qr_svg(uri: str, title: str) -> Markup:
    """The otpauth:// URI as an inline SVG QR code: no style attributes (CSP), a title for screen readers,
    dark modules on a white background so it scans in dark mode too."""
    out = io.BytesIO()
    segno.make(uri, error="m").save(
        out,
        kind="svg",
        xmldecl=False,
        svgns=True,
        nl=False,
        scale=5,
        border=4,
        dark="#000",
        light="#fff",
        title=title,
    )
    svg = out.getvalue().decode()
    return Markup(svg.replace("<svg ", '<svg role="img" class="qr-code" ', 1))  # noqa: S704 SVG from segno


def format_secret(secret: str) -> str:
    """The secret in groups of four for typing it into an app by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def _normalise_totp(code: str) -> str | None:
    digits = "".join(code.split())
    return digits if len(digits) == 6 and digits.isdigit() else None


def _now_step(now: float | None) -> int:
    return int((time.time() if now is None else now) // STEP_SECONDS)


def _matching_step(secret: str, code: str, now: float | None) -> int | None:
    totp = pyotp.TOTP(secret)
    current = _now_step(now)
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if hmac.compare_digest(totp.at(step * STEP_SECONDS), code):
            return step
    return None


def confirm_enrolment(
    db: Session, settings: Settings, user: User, code: str, *, now: float | None = None
) -> list[str]:
    """Activate the secret being enrolled once ``code`` matches it; returns fresh recovery codes."""
    cred = credential(db, user.id)
    normalised = _normalise_totp(code)
    if cred is None or not cred.pending_secret or normalised is None:
        raise TwoFactorError("no enrolment or malformed code")
    secret = decrypt_secret(settings, cred.pending_secret)
    step = _matching_step(secret, normalised, now)
    if step is None:
        raise TwoFactorError("wrong code")
    replaced = cred.is_active
    cred.secret = cred.pending_secret
    cred.pending_secret = None
    cred.pending_created_at = None
    cred.confirmed_at = utcnow()
    cred.last_used_step = step  # the confirming code may not sign anyone in afterwards
    db.flush()
    log.info("auth 2fa %s user_id=%s", "replaced" if replaced else "enabled", user.id)
    return new_recovery_codes(db, user)


# --- verification -----------------------------------------------------------------------------------------


def verify_totp(db: Session, settings: Settings, user: User, code: str, *, now: float | None = None) -> bool:
    """True if ``code`` is the user's TOTP code for a time step later than the last accepted one. The step
    is recorded with a conditional UPDATE, so two requests racing with the same code cannot both win."""
    cred = active_credential(db, user.id)
    normalised = _normalise_totp(code)
    if cred is None or normalised is None:
        return False
    step = _matching_step(decrypt_secret(settings, cred.secret or ""), normalised, now)
    if step is None:
        return False
    result = db.execute(
        update(TotpCredential)
        .where(
            TotpCredential.id == cred.id,
            (TotpCredential.last_used_step.is_(None)) | (TotpCredential.last_used_step < step),
        )
        .values(last_used_step=step)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        log.warning("auth 2fa replayed code user_id=%s step=%s", user.id, step)
        return False
    db.refresh(cred)
    return True


def _recovery_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def _normalise_recovery(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch.isalnum())


def new_recovery_codes(db: Session, user: User) -> list[str]:
    """Replace the user's recovery codes with ten new ones; only their hashes are stored."""
    db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    size = RECOVERY_GROUPS * RECOVERY_GROUP_LEN
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(size))
        db.add(RecoveryCode(user_id=user.id, code_hash=_recovery_hash(raw)))
        codes.append("-".join(raw[i : i + RECOVERY_GROUP_LEN] for i in range(0, size, RECOVERY_GROUP_LEN)))
    db.flush()
    log.info("auth 2fa recovery codes issued user_id=%s", user.id)
    return codes


def remaining_recovery_codes(db: Session, user_id: int) -> int:
    return db.execute(
        select(func.count(RecoveryCode.id)).where(
            RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None)
        )
    ).scalar_one()


def use_recovery_code(db: Session, user: User, code: str) -> bool:
    """True once per recovery code (marked used by a conditional UPDATE)."""
    normalised = _normalise_recovery(code)
    if len(normalised) != RECOVERY_GROUPS * RECOVERY_GROUP_LEN:
        return False
    result = db.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == _recovery_hash(normalised),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 1:
        log.info("auth 2fa recovery code used user_id=%s", user.id)
        return True
    return False


def verify_second_factor(
    db: Session, settings: Settings, user: User, code: str, *, now: float | None = None
) -> str | None:
    """ "totp" or "recovery" when ``code`` is a valid TOTP or unused recovery code, else None."""
    if _normalise_totp(code) is not None:
        return "totp" if verify_totp(db, settings, user, code, now=now) else None
    return "recovery" if use_recovery_code(db, user, code) else None


# --- switching off ----------------------------------------------------------------------------------------


def disable(db: Session, user: User) -> None:
    db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    db.execute(delete(TotpCredential).where(TotpCredential.user_id == user.id))
    log.info("auth 2fa disabled user_id=%s", user.id)


def admin_reset(db: Session, *, actor: User | None, target: User) -> None:
    """For a lost device: the second factor and recovery codes go, every session of the user ends; at the
    next login the user enrols again (or signs in with the password alone if 2FA is optional for them).
    ``actor`` is None when an operator runs ``mitmachen reset-two-factor`` (e.g. the last administrator)."""
    db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == target.id))
    db.execute(delete(TotpCredential).where(TotpCredential.user_id == target.id))
    revoke_all(db, target.id, "2fa-reset")
    log.warning("auth 2fa reset by admin user_id=%s by=%s", target.id, actor.id if actor else "cli")


# --- the sign-in ------------------------------------------------------------------------------------------


def sign_in(request: Request, db: Session, user: User, next_url: str, *, method: str) -> Response:
    """Turn a successful primary authentication (``method``: "password", "oidc", ...) into a session,
    or into a pending sign-in that still needs the second factor or a forced enrolment."""
    settings = settings_of(request)
    enrolled = is_enabled(db, user)
    if enrolled or role_requires_2fa(settings, user):
        request.session.clear()  # nothing of an earlier session survives a change of identity
        request.session[PENDING_KEY] = {
            "uid": user.id,
            "method": method,
            "next": next_url,
            "exp": int(time.time()) + PENDING_SECONDS,
            "nonce": secrets.token_urlsafe(12),
        }
        log.info(
            "auth first factor ok user_id=%s method=%s ip=%s then=%s",
            user.id,
            method,
            client_ip(request),
            "totp" if enrolled else "enrolment",
        )
        return redirect("/login/2fa" if enrolled else "/login/2fa/enrol")
    return _start(request, db, user, next_url, method)


def _start(request: Request, db: Session, user: User, next_url: str, method: str) -> Response:
    start_session(db, request.session, user, request.headers.get("user-agent", ""))
    log.info("auth login user_id=%s method=%s ip=%s", user.id, method, client_ip(request))
    return redirect(next_url)


def log_failed_login(request: Request, account: str, method: str) -> None:
    """A failed primary sign-in (ASVS V16.3.1). The account appears as a short hash, so repeated attempts
    on one account can be correlated without writing e-mail addresses into the log."""
    digest = hashlib.sha256(account.strip().lower().encode()).hexdigest()[:12]
    log.warning("auth login failed account=%s method=%s ip=%s", digest, method, client_ip(request))


def pending_user(request: Request, db: Session) -> tuple[User, dict] | None:
    """The user of this browser's pending sign-in, if it is still valid (5 minutes)."""
    pending = request.session.get(PENDING_KEY)
    if not isinstance(pending, dict):
        return None
    if not isinstance(pending.get("exp"), int) or pending["exp"] < time.time():
        request.session.pop(PENDING_KEY, None)
        return None
    user = db.get(User, pending.get("uid"))
    if user is None or user.is_deleted or user.is_suspended():
        request.session.pop(PENDING_KEY, None)
        return None
    return user, pending


def complete_sign_in(request: Request, db: Session, user: User, pending: dict, factor: str) -> str:
    """Both factors are proven: the pending state goes, a new session starts; returns where to go next."""
    request.session.pop(PENDING_KEY, None)
    next_url = str(pending.get("next") or "/")
    _start(request, db, user, next_url, f"{pending.get('method')}+{factor}")
    return next_url
