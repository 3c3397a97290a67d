"""Two-factor sign-in with the real TOTP algorithm (RFC 6238 through pyotp): enrolment with a QR code,
the sign-in step, single use of codes, recovery codes, brute-force control, forced enrolment of staff,
re-authentication before changes, the administrator's reset, and that a password reset does not bypass it.

Codes are computed from the secret the enrolment page shows, as an authenticator app would. A code that
confirmed the enrolment cannot sign in afterwards (its time step is used), so sign-ins use the code of the
next time step, which the verifier accepts (valid window of one step)."""

from __future__ import annotations

import html
import logging
import re
import time

import pyotp
import pytest

from app.accounts import twofactor
from app.accounts.twofactor_models import RecoveryCode, TotpCredential
from app.database import new_session
from app.models import Role, User, UserSession
from app.settings import Settings, SettingsError
from tests.conftest import PASSWORD, make_settings, query

REQUIRED = {"two_factor_required_roles": "moderator,staff,admin"}


@pytest.fixture
def settings_overrides() -> dict:
    return dict(REQUIRED)


def next_code(secret: str) -> str:
    """The code of the next time step: valid now, and not the step that confirmed the enrolment."""
    return pyotp.TOTP(secret).at(time.time() + 30)


def secret_on(page: str) -> str:
    match = re.search(r'id="totp-secret">([A-Z2-7 ]+)</code>', page)
    assert match, "no secret on the enrolment page"
    return match.group(1).replace(" ", "")


def codes_on(page: str) -> list[str]:
    return re.findall(r"<li><code>([a-z2-9-]+)</code></li>", page)


def password_login(client, user: User, next_url: str = "/"):
    return client.post_form("/login", {"email": user.email, "password": PASSWORD, "next": next_url})


def enrol(client, login, user: User) -> tuple[str, list[str]]:
    """Sign in (2FA optional for the user's role), enrol from the account page and sign out."""
    login(user)
    page = client.get("/account/2fa/setup")
    assert page.status_code == 200
    secret = secret_on(page.text)
    done = client.post_form("/account/2fa/setup", {"code": pyotp.TOTP(secret).now()})
    assert done.status_code == 200, done.text
    codes = codes_on(done.text)
    assert len(codes) == 10
    client.post_form("/logout")
    return secret, codes


def signed_in(client) -> bool:
    return client.get("/account").status_code == 200


def test_enrol_confirm_and_sign_in_with_totp(client, db, make_user, login):
    """Enrolment shows an inline SVG QR code of an otpauth URI and the key as text; the secret is stored
    encrypted and only becomes active with a valid code; afterwards login asks for the code."""
    user = make_user()
    login(user)
    page = client.get("/account/2fa/setup")
    assert page.status_code == 200
    assert '<svg role="img" class="qr-code"' in page.text and "<title>" in page.text
    assert "style=" not in page.text.split("<svg", 1)[1].split("</svg>", 1)[0]  # CSP: no inline styles
    secret = secret_on(page.text)
    (cred,) = query(db, TotpCredential)
    assert cred.secret is None and cred.pending_secret and secret not in cred.pending_secret  # encrypted
    assert (
        client.get("/account/2fa/setup").text.count(twofactor.format_secret(secret)) == 1
    )  # stable on reload
    wrong = client.post_form(
        "/account/2fa/setup", {"code": "000000" if pyotp.TOTP(secret).now() != "000000" else "111111"}
    )
    assert wrong.status_code == 400 and 'id="e-code"' in wrong.text
    assert query(db, TotpCredential)[0].confirmed_at is None
    done = client.post_form("/account/2fa/setup", {"code": pyotp.TOTP(secret).now()})
    assert done.status_code == 200 and len(codes_on(done.text)) == 10
    (cred,) = query(db, TotpCredential)
    assert cred.is_active and cred.pending_secret is None
    assert twofactor.decrypt_secret(make_settings(db), cred.secret) == secret
    assert len(query(db, RecoveryCode, RecoveryCode.user_id == user.id)) == 10
    client.post_form("/logout")

    first = password_login(client, user, "/account")
    assert first.status_code == 303 and first.headers["location"] == "/login/2fa"
    assert not signed_in(client)  # the password alone is not a session
    step = client.post_form("/login/2fa", {"code": next_code(secret)})
    assert step.status_code == 303 and step.headers["location"] == "/account"
    assert signed_in(client)


def test_wrong_code_is_rejected(client, db, make_user, login):
    user = make_user()
    secret, _codes = enrol(client, login, user)
    password_login(client, user)
    good = {pyotp.TOTP(secret).at(time.time() + d) for d in (-30, 0, 30, 60)}
    bad = next(c for c in ("123456", "654321", "000001") if c not in good)
    for code in (bad, "12345", "abcdef", ""):
        response = client.post_form("/login/2fa", {"code": code})
        assert response.status_code == 400, code
    assert not signed_in(client)


def test_replayed_code_is_rejected(client, db, make_user, login):
    """ASVS V6.5.1: a TOTP code accepted once is not accepted again (the last used time step is stored)."""
    user = make_user()
    secret, _codes = enrol(client, login, user)
    code = next_code(secret)
    password_login(client, user)
    assert client.post_form("/login/2fa", {"code": code}).status_code == 303
    client.post_form("/logout")
    password_login(client, user)
    replay = client.post_form("/login/2fa", {"code": code})
    assert replay.status_code == 400
    assert not signed_in(client)
    # the code that confirmed the enrolment is used up as well
    (cred,) = query(db, TotpCredential)
    assert cred.last_used_step == int((time.time() + 30) // 30) or cred.last_used_step == int(
        time.time() // 30
    )


def test_expired_code_is_rejected(client, db, make_user, login):
    """A code from two or more time steps ago is refused; the window accepts one step either side."""
    user = make_user()
    secret, _codes = enrol(client, login, user)
    password_login(client, user)
    old = pyotp.TOTP(secret).at(time.time() - 60)
    if old != next_code(secret) and old != pyotp.TOTP(secret).now():
        assert client.post_form("/login/2fa", {"code": old}).status_code == 400
    assert not signed_in(client)


def test_time_window_and_single_use_at_the_service_level(db, make_user):
    """verify_totp with explicit times: steps s-1, s, s+1 are accepted, s-2 and s+2 not, each step once,
    and never a step older than the last used one."""
    user = make_user()
    settings = make_settings(db)
    with new_session(db.engine) as s:
        user = s.get(User, user.id)
        secret = twofactor.begin_enrolment(s, settings, user)
        t0 = 1_800_000_000.0  # a fixed time
        totp = pyotp.TOTP(secret)
        twofactor.confirm_enrolment(s, settings, user, totp.at(t0 - 300), now=t0 - 300)
        assert not twofactor.verify_totp(s, settings, user, totp.at(t0 - 60), now=t0)
        assert not twofactor.verify_totp(s, settings, user, totp.at(t0 + 60), now=t0)
        assert twofactor.verify_totp(s, settings, user, totp.at(t0 - 30), now=t0)
        assert not twofactor.verify_totp(s, settings, user, totp.at(t0 - 30), now=t0)  # replay
        assert twofactor.verify_totp(s, settings, user, totp.at(t0 + 30), now=t0)
        assert not twofactor.verify_totp(s, settings, user, totp.at(t0), now=t0)  # older than last used
        s.commit()


def test_recovery_code_works_once(client, db, make_user, login):
    user = make_user()
    _secret, codes = enrol(client, login, user)
    password_login(client, user)
    used = client.post_form("/login/2fa", {"code": codes[0].upper().replace("-", " ")})
    assert used.status_code == 303 and signed_in(client)
    assert "9" in client.get("/").text  # the flash tells how many remain
    client.post_form("/logout")
    password_login(client, user)
    again = client.post_form("/login/2fa", {"code": codes[0]})
    assert again.status_code == 400 and not signed_in(client)
    assert sum(1 for c in query(db, RecoveryCode) if c.used_at is not None) == 1
    stored = {c.code_hash for c in query(db, RecoveryCode)}
    assert not any(code.replace("-", "") in stored or code in stored for code in codes)  # only hashes


def test_brute_force_of_codes_is_rate_limited_and_logged(client, db, make_user, login, app, caplog):
    """ASVS V6.3.1 brute-force control and V16.3.1 auth events: wrong codes are counted per account and
    IP; over the limit the answer is 429 with Retry-After, even for the right code; failures are logged."""
    user = make_user()
    secret, _codes = enrol(client, login, user)
    app.state.settings = make_settings(
        db,
        **{
            **REQUIRED,
            "rate_limit_enabled": True,
            "rate_limit_two_factor": "3/900",
            "smtp_host": app.state.settings.smtp_host,
            "smtp_port": app.state.settings.smtp_port,
            "mail_backend": "smtp",
        },
    )
    good = {pyotp.TOTP(secret).at(time.time() + d) for d in (-30, 0, 30, 60)}
    bad = next(c for c in ("123456", "654321", "000001", "999999") if c not in good)
    caplog.set_level(logging.INFO, logger="mitmachen.auth")
    password_login(client, user)
    for _ in range(3):
        assert client.post_form("/login/2fa", {"code": bad}).status_code == 400
    blocked = client.post_form("/login/2fa", {"code": next_code(secret)})
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert not signed_in(client)
    messages = [r.getMessage() for r in caplog.records if r.name == "mitmachen.auth"]
    assert sum(f"auth 2fa failed user_id={user.id}" in m for m in messages) == 3
    assert any(f"auth 2fa rate limited user_id={user.id}" in m for m in messages)
    assert any(f"auth first factor ok user_id={user.id} method=password" in m for m in messages)


def test_successful_sign_in_is_logged_with_a_new_session(client, db, make_user, login, caplog):
    """ASVS V7.2.4 and V16.3.1: completing the second factor starts a new session (new cookie token,
    new CSRF token, new session record) and logs the login with both factors."""
    user = make_user()
    secret, _codes = enrol(client, login, user)
    caplog.set_level(logging.INFO, logger="mitmachen.auth")
    before = {s.id for s in query(db, UserSession)}
    password_login(client, user)
    pending_csrf = client.csrf("/login/2fa")
    client.post("/login/2fa", data={"code": next_code(secret), "csrf_token": pending_csrf})
    after = query(db, UserSession, UserSession.user_id == user.id, UserSession.revoked_at.is_(None))
    assert len(after) == 1 and after[0].id not in before
    assert client.csrf("/account") != pending_csrf
    assert any(f"auth login user_id={user.id} method=password+totp" in r.getMessage() for r in caplog.records)


def test_pending_sign_in_expires(client, db, make_user, login, monkeypatch):
    user = make_user()
    secret, _codes = enrol(client, login, user)
    password_login(client, user)
    real = time.time
    monkeypatch.setattr(twofactor.time, "time", lambda: real() + twofactor.PENDING_SECONDS + 1)
    response = client.post_form("/login/2fa", {"code": next_code(secret)})
    assert response.status_code == 303 and response.headers["location"] == "/login"
    monkeypatch.undo()
    assert not signed_in(client)
    assert client.get("/login/2fa").headers["location"] == "/login"  # nothing pending any more


def test_second_factor_page_needs_a_pending_sign_in(client, db, make_user):
    response = client.get("/login/2fa")
    assert response.status_code == 303 and response.headers["location"] == "/login"


@pytest.mark.parametrize("role", [Role.MODERATOR, Role.STAFF, Role.ADMIN])
def test_staff_roles_must_enrol_at_login(client, db, make_user, role):
    """ASVS V6.3.3: moderators, staff and admins without a second factor get no session before enrolling."""
    user = make_user(role)
    first = password_login(client, user, "/account")
    assert first.status_code == 303 and first.headers["location"] == "/login/2fa/enrol"
    assert not signed_in(client)
    assert client.get("/moderation").status_code in (302, 303, 403)
    page = client.get("/login/2fa/enrol")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    secret = secret_on(page.text)
    done = client.post_form("/login/2fa/enrol", {"code": pyotp.TOTP(secret).now()})
    assert done.status_code == 200 and done.headers["Cache-Control"] == "no-store"
    assert len(codes_on(done.text)) == 10 and 'href="/account"' in done.text
    assert signed_in(client)
    client.post_form("/logout")
    assert password_login(client, user).headers["location"] == "/login/2fa"


def test_required_roles_are_configurable(client, db, make_user, app):
    """With TWO_FACTOR_REQUIRED_ROLES empty, a moderator may sign in with the password alone."""
    app.state.settings = make_settings(db, two_factor_required_roles="")
    moderator = make_user(Role.MODERATOR)
    assert password_login(client, moderator).headers["location"] == "/"
    assert signed_in(client)
    assert Settings(two_factor_required_roles="staff, admin").two_factor_roles == {"staff", "admin"}
    with pytest.raises(SettingsError):
        Settings(two_factor_required_roles="moderator,boss").validate()


def test_residents_sign_in_without_second_factor(client, db, make_user):
    resident = make_user()
    assert password_login(client, resident).headers["location"] == "/"
    assert signed_in(client)


def test_password_reset_does_not_bypass_totp(client, db, make_user, login, mailbox):
    """ASVS V6.4.3: after a password reset the user is not signed in, and the new password still needs
    the second factor."""
    user = make_user()
    secret, _codes = enrol(client, login, user)
    client.post_form("/password/forgot", {"email": user.email})
    link = mailbox.link(user.email, "/password/reset")
    token = html.unescape(link.split("token=", 1)[1])
    new_password = "a completely new passphrase"
    done = client.post_form(link, {"token": token, "password": new_password, "password2": new_password})
    assert done.status_code == 303 and done.headers["location"] == "/login"
    assert not signed_in(client)
    first = client.post_form("/login", {"email": user.email, "password": new_password})
    assert first.headers["location"] == "/login/2fa"
    assert not signed_in(client)
    assert client.post_form("/login/2fa", {"code": next_code(secret)}).status_code == 303
    assert signed_in(client)


def test_disable_requires_reauthentication(client, db, make_user, login):
    """ASVS V7.5.1: turning the second factor off needs the current password or a current code."""
    user = make_user()
    secret, _codes = enrol(client, login, user)
    password_login(client, user)
    client.post_form("/login/2fa", {"code": next_code(secret)})
    page = client.get("/account/2fa/disable")
    assert page.status_code == 200
    assert client.post_form("/account/2fa/disable", {}).status_code == 400
    assert client.post_form("/account/2fa/disable", {"password": "wrong password!"}).status_code == 400
    assert query(db, TotpCredential)[0].is_active
    done = client.post_form("/account/2fa/disable", {"password": PASSWORD})
    assert done.status_code == 303
    assert query(db, TotpCredential) == [] and query(db, RecoveryCode) == []
    client.post_form("/logout")
    assert password_login(client, user).headers["location"] == "/"


def test_staff_cannot_disable_but_can_replace_the_app(client, db, make_user):
    staff = make_user(Role.STAFF)
    password_login(client, staff)
    secret = secret_on(client.get("/login/2fa/enrol").text)
    client.post_form("/login/2fa/enrol", {"code": pyotp.TOTP(secret).now()})
    assert client.get("/account/2fa/disable").status_code == 403
    assert client.post_form("/account/2fa/disable", {"password": PASSWORD}).status_code == 403
    assert query(db, TotpCredential)[0].is_active
    # replacing: re-authenticate, then the old app works until a code of the new one is confirmed
    assert client.get("/account/2fa/setup").headers["location"] == "/account/2fa"
    assert client.post_form("/account/2fa/replace", {"code": "12"}).status_code == 400
    assert (
        client.post_form("/account/2fa/replace", {"password": PASSWORD}).headers["location"]
        == "/account/2fa/setup"
    )
    new_secret = secret_on(client.get("/account/2fa/setup").text)
    assert new_secret != secret
    (cred,) = query(db, TotpCredential)
    assert cred.is_active and cred.pending_secret
    done = client.post_form("/account/2fa/setup", {"code": pyotp.TOTP(new_secret).now()})
    assert done.status_code == 200
    client.post_form("/logout")
    password_login(client, staff)
    assert client.post_form("/login/2fa", {"code": next_code(secret)}).status_code == 400  # old app
    assert client.post_form("/login/2fa", {"code": next_code(new_secret)}).status_code == 303


def test_regenerate_recovery_codes_requires_reauthentication_and_is_not_cached(client, db, make_user, login):
    """ASVS V7.5.1 and V14.2.1: new recovery codes need re-authentication (app/accounts/reauth.py: an
    account with a password gives the password, as for the export and the deletion); the enrolment and
    recovery-code pages are sent with Cache-Control: no-store."""
    user = make_user()
    login(user)
    setup = client.get("/account/2fa/setup")
    assert setup.headers["Cache-Control"] == "no-store"
    secret = secret_on(setup.text)
    first = client.post_form("/account/2fa/setup", {"code": pyotp.TOTP(secret).now()})
    assert first.headers["Cache-Control"] == "no-store"
    old_codes = codes_on(first.text)
    page = client.get("/account/2fa/recovery-codes")
    assert 'id="f-password"' in page.text and 'id="f-code"' not in page.text
    assert client.post_form("/account/2fa/recovery-codes", {"password": "not my password"}).status_code == 400
    code_only = client.post_form("/account/2fa/recovery-codes", {"code": next_code(secret)})
    assert code_only.status_code == 400 and 'id="e-password"' in code_only.text
    again = client.post_form("/account/2fa/recovery-codes", {"password": PASSWORD})
    assert again.status_code == 200 and again.headers["Cache-Control"] == "no-store"
    new_codes = codes_on(again.text)
    assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)
    client.post_form("/logout")
    password_login(client, user)
    assert client.post_form("/login/2fa", {"code": old_codes[0]}).status_code == 400
    assert client.post_form("/login/2fa", {"code": new_codes[0]}).status_code == 303


def test_account_without_password_changes_its_second_factor_with_a_code(client, db, make_user, login):
    """ASVS V7.5.1: an account without a password (e.g. from OpenID Connect) re-authenticates for changes
    of the second factor with the current code of its app (the shared service, app/accounts/reauth.py);
    each time step works once."""
    user = make_user()
    login(user)
    secret = secret_on(client.get("/account/2fa/setup").text)
    assert client.post_form("/account/2fa/setup", {"code": pyotp.TOTP(secret).now()}).status_code == 200
    with new_session(db.engine, write=True) as s:
        s.get(User, user.id).password_hash = None
        s.commit()
    for url in ("/account/2fa/recovery-codes", "/account/2fa/replace", "/account/2fa/disable"):
        page = client.get(url)
        assert page.status_code == 200
        assert 'id="f-code"' in page.text and 'id="f-password"' not in page.text
        assert 'action="/account/confirm/' not in page.text  # no mailed link: the app confirms
    assert client.post_form("/account/2fa/disable", {"password": PASSWORD}).status_code == 400
    code = next_code(secret)
    again = client.post_form("/account/2fa/recovery-codes", {"code": code})
    assert again.status_code == 200 and len(codes_on(again.text)) == 10
    replayed = client.post_form("/account/2fa/disable", {"code": code})
    assert replayed.status_code == 400 and 'id="e-code"' in replayed.text
    assert query(db, TotpCredential)[0].is_active


def test_admin_resets_a_lost_device(client, db, make_user, login, caplog):
    """An administrator resets a user's second factor (logged, the user's sessions end); the user enrols
    again at the next login. Others may not."""
    user = make_user(Role.MODERATOR)
    password_login(client, user)
    secret = secret_on(client.get("/login/2fa/enrol").text)
    client.post_form("/login/2fa/enrol", {"code": pyotp.TOTP(secret).now()})
    client.post_form("/logout")
    other = make_user()
    login(other)
    assert client.post_form(f"/admin/users/{user.id}/2fa/reset").status_code == 403
    client.post_form("/logout")

    admin = make_user(Role.ADMIN)
    password_login(client, admin)
    admin_secret = secret_on(client.get("/login/2fa/enrol").text)
    client.post_form("/login/2fa/enrol", {"code": pyotp.TOTP(admin_secret).now()})
    listing = client.get("/admin/users")
    assert f'action="/admin/users/{user.id}/2fa/reset"' in listing.text
    caplog.set_level(logging.INFO, logger="mitmachen.auth")
    done = client.post_form(f"/admin/users/{user.id}/2fa/reset")
    assert done.status_code == 303
    assert query(db, TotpCredential, TotpCredential.user_id == user.id) == []
    assert any(
        f"auth 2fa reset by admin user_id={user.id} by={admin.id}" in r.getMessage() for r in caplog.records
    )
    assert client.post_form("/admin/users/999999/2fa/reset").status_code == 404
    client.post_form("/logout")
    assert password_login(client, user).headers["location"] == "/login/2fa/enrol"


def test_secret_cannot_be_read_with_another_secret_key(db):
    settings = make_settings(db)
    token = twofactor.encrypt_secret(settings, "JBSWY3DPEHPK3PXP")
    assert twofactor.decrypt_secret(settings, token) == "JBSWY3DPEHPK3PXP"
    other = make_settings(db, secret_key="another-secret-key-" + "y" * 32)
    with pytest.raises(twofactor.TwoFactorError):
        twofactor.decrypt_secret(other, token)


def test_cli_resets_the_last_administrators_second_factor(client, db, make_user, monkeypatch, capsys):
    """`mitmachen reset-two-factor EMAIL` for an operator whose only administrator lost the phone."""
    from app.cli import main

    admin = make_user(Role.ADMIN)
    password_login(client, admin)
    secret = secret_on(client.get("/login/2fa/enrol").text)
    client.post_form("/login/2fa/enrol", {"code": pyotp.TOTP(secret).now()})
    assert signed_in(client)
    monkeypatch.setenv("DATABASE_URL", db.url)
    monkeypatch.setenv("ENVIRONMENT", "development")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    assert main(["reset-two-factor", "nobody@example.org"]) == 1
    assert "no account" in capsys.readouterr().err
    assert main(["reset-two-factor", admin.email]) == 0
    assert "was reset" in capsys.readouterr().out
    assert query(db, TotpCredential) == [] and query(db, RecoveryCode) == []
    assert not signed_in(client)  # the sessions ended
    assert password_login(client, admin).headers["location"] == "/login/2fa/enrol"


def test_failed_password_login_is_logged_without_the_address(client, db, make_user, caplog):
    """ASVS V16.3.1: a failed login is logged with the IP and a hash of the account, not the address."""
    user = make_user()
    caplog.set_level(logging.INFO, logger="mitmachen.auth")
    response = client.post_form("/login", {"email": user.email, "password": "wrong password!"})
    assert response.status_code == 400
    (record,) = [r for r in caplog.records if "auth login failed" in r.getMessage()]
    assert "method=password" in record.getMessage() and user.email not in record.getMessage()
