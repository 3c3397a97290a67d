"""Registration, e-mail confirmation, login, logout, password reset, profile and deletion through HTTP."""

from __future__ import annotations

import datetime as dt

import pytest

from app import security
from app.models import User, UserSession
from tests.conftest import PASSWORD, query


def register(client, **overrides):
    data = {
        "email": "neu@example.org",
        "display_name": "Nora Neu",
        "password": PASSWORD,
        "password2": PASSWORD,
        "locale": "de",
        "accept_rules": "on",
    }
    data.update(overrides)
    return client.post_form("/register", data)


def test_register_confirm_login_logout(client, db, mailbox):
    """A resident registers, confirms through the mailed link, logs in and out."""
    response = register(client)
    assert response.status_code == 303 and response.headers["location"] == "/register/sent"
    [user] = query(db, User, User.email == "neu@example.org")
    assert user.email_confirmed_at is None and user.password_hash.startswith("$argon2id$")
    # unconfirmed accounts cannot log in yet
    response = client.post_form("/login", {"email": "neu@example.org", "password": PASSWORD})
    assert response.status_code == 400 and "bestätigen" in response.text
    link = mailbox.link("neu@example.org", "/register/confirm")
    response = client.get(link)
    assert response.status_code == 303
    assert query(db, User, User.email == "neu@example.org")[0].email_confirmed_at is not None
    response = client.post_form("/login", {"email": "neu@example.org", "password": PASSWORD})
    assert response.status_code == 303
    page = client.get("/account")
    assert page.status_code == 200 and "Nora Neu" in page.text
    assert page.headers["cache-control"] == "no-store"
    response = client.post_form("/logout")
    assert response.status_code == 303
    assert client.get("/account").status_code == 303  # back to the login page
    assert all(s.revoked_at is not None for s in query(db, UserSession))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("email", "", "Dieses Feld ist erforderlich."),
        ("email", "not-an-address", "gültige E-Mail-Adresse"),
        ("email", "a" * 250 + "@example.org", "höchstens 254 Zeichen"),
        ("display_name", "", "Dieses Feld ist erforderlich."),
        ("display_name", "x" * 81, "höchstens 80 Zeichen"),
        ("password", "short", "mindestens 10 Zeichen"),
        ("password2", "something else!", "stimmen nicht überein"),
        ("accept_rules", "", "Community-Regeln"),
        ("locale", "fr", "eine der Möglichkeiten"),
    ],
)
def test_register_bad_input(client, db, mailbox, field, value, message):
    """Bad input gets a 400, a message next to the field, and nothing is written or mailed."""
    response = register(client, **{field: value})
    assert response.status_code == 400
    assert f'id="e-{field}"' in response.text
    assert message in response.text
    assert query(db, User, User.email.is_not(None), User.role == "resident") == []
    assert mailbox.messages == []


def test_register_duplicate_reveals_nothing(client, db, mailbox, make_user):
    """A second registration with a known address answers like a new one (no enumeration), writes
    nothing, and tells the owner by mail instead."""
    make_user(email="taken@example.org", name="Original")
    response = register(client, email="taken@example.org", display_name="Impostor")
    assert response.status_code == 303 and response.headers["location"] == "/register/sent"
    [user] = query(db, User, User.email == "taken@example.org")
    assert user.display_name == "Original"
    [mail] = mailbox.to("taken@example.org")
    assert "/password/forgot" in mailbox.body(mail)


def test_confirm_forged_and_expired_tokens(client, db, app, make_user):
    """A forged confirmation token and an expired one are refused with a clear message."""
    response = client.get("/register/confirm?token=forged.token.value")
    assert response.status_code == 400 and "nicht gültig" in response.text
    user = make_user(confirmed=False)
    settings = app.state.settings
    token = security.sign(settings.secret_key, "confirm", {"uid": user.id, "email": user.email})
    import time

    real = time.time
    try:
        time.time = lambda: real() + settings.email_token_hours * 3600 + 60
        response = client.get(f"/register/confirm?token={token}")
    finally:
        time.time = real
    assert response.status_code == 400 and "abgelaufen" in response.text
    assert query(db, User, User.id == user.id)[0].email_confirmed_at is None


def test_login_errors_do_not_enumerate(client, make_user):
    """Unknown e-mail and wrong password give the same message."""
    make_user(email="known@example.org")
    unknown = client.post_form("/login", {"email": "nobody@example.org", "password": "whatever-123"})
    wrong = client.post_form("/login", {"email": "known@example.org", "password": "wrong-password"})
    assert unknown.status_code == wrong.status_code == 400
    msg = "E-Mail-Adresse oder Passwort ist falsch."
    assert msg in unknown.text and msg in wrong.text


def test_login_new_session_and_safe_next(client, make_user, db):
    """Login issues a new session (fixation) and only follows relative next= targets."""
    user = make_user()
    client.get("/")
    before = client.cookies.get("session")
    response = client.post_form(
        "/login", {"email": user.email, "password": PASSWORD, "next": "https://evil.example/"}
    )
    assert response.headers["location"] == "/"
    assert client.cookies.get("session") != before
    client.post_form("/logout")
    response = client.post_form("/login?next=/account", {"email": user.email, "password": PASSWORD})
    assert response.headers["location"] == "/account"
    client.post_form("/logout")
    response = client.post_form("/login?next=//evil.example/x", {"email": user.email, "password": PASSWORD})
    assert response.headers["location"] == "/"


def test_password_reset_flow(client, db, mailbox, make_user, login):
    """Forgot password → mailed link → new password; the link is single-use and old sessions end."""
    user = make_user(email="vergessen@example.org")
    other = type(client)(client.app, base_url="http://testserver", follow_redirects=False)
    login(user, c=other)
    response = client.post_form("/password/forgot", {"email": "vergessen@example.org"})
    assert response.status_code == 200
    unknown = client.post_form("/password/forgot", {"email": "niemand@example.org"})
    assert unknown.status_code == 200 and unknown.text.count("Falls") == response.text.count("Falls")
    link = mailbox.link("vergessen@example.org", "/password/reset")
    assert client.get(link).status_code == 200
    token = link.split("token=")[1]
    bad = client.post_form("/password/reset", {"token": token, "password": "short", "password2": "short"})
    assert bad.status_code == 400 and 'id="e-password"' in bad.text
    ok = client.post_form(
        "/password/reset",
        {"token": token, "password": "a brand new secret", "password2": "a brand new secret"},
    )
    assert ok.status_code == 303
    again = client.post_form(
        "/password/reset",
        {"token": token, "password": "another new secret", "password2": "another new secret"},
    )
    assert again.status_code == 400 and "nicht gültig" in again.text
    assert other.get("/account").status_code == 303  # the other session was revoked
    login(user, password="a brand new secret")


def test_profile_edit_and_validation(client, db, make_user, login):
    """Profile: display name, district and language are saved; bad values get field errors."""
    user = make_user()
    login(user)
    from proposals.models import District

    district = query(db, District, District.slug == "barmen")[0]
    response = client.post_form(
        "/account", {"display_name": "Neuer Name", "district_id": str(district.id), "locale": "en"}
    )
    assert response.status_code == 303
    [stored] = query(db, User, User.id == user.id)
    assert (stored.display_name, stored.district_id, stored.locale) == ("Neuer Name", district.id, "en")
    assert "My account" in client.get("/account").text  # the page is now English
    response = client.post_form("/account", {"display_name": "", "district_id": "999999", "locale": "xx"})
    assert response.status_code == 400
    for field in ("display_name", "district_id", "locale"):
        assert f'id="e-{field}"' in response.text
    assert query(db, User, User.id == user.id)[0].display_name == "Neuer Name"


def test_change_password_keeps_current_session(client, db, make_user, login):
    """Changing the password revokes other sessions and keeps this one; a wrong current password fails."""
    user = make_user()
    other = type(client)(client.app, base_url="http://testserver", follow_redirects=False)
    login(user, c=other)
    login(user)
    bad = client.post_form(
        "/account/password",
        {"current_password": "wrong", "password": "new password 123", "password2": "new password 123"},
    )
    assert bad.status_code == 400 and 'id="e-current_password"' in bad.text
    ok = client.post_form(
        "/account/password",
        {"current_password": PASSWORD, "password": "new password 123", "password2": "new password 123"},
    )
    assert ok.status_code == 303
    assert client.get("/account").status_code == 200
    assert other.get("/account").status_code == 303


def test_sign_out_everywhere(client, db, make_user, login):
    """ "Sign out everywhere" revokes every session of the user."""
    user = make_user()
    other = type(client)(client.app, base_url="http://testserver", follow_redirects=False)
    login(user, c=other)
    login(user)
    assert client.post_form("/account/sessions/revoke").status_code == 303
    assert client.get("/account").status_code == 303
    assert other.get("/account").status_code == 303


def test_session_idle_timeout(client, db, make_user, login):
    """A session idle for longer than the limit is no longer accepted."""
    user = make_user()
    login(user)
    from sqlalchemy import update

    from app.database import new_session, utcnow

    with new_session(db.engine) as s:
        s.execute(update(UserSession).values(last_seen_at=utcnow() - dt.timedelta(hours=5)))
        s.commit()
    assert client.get("/account").status_code == 303


def test_delete_account(client, db, make_user, login):
    """Deleting needs the password and a confirmation; afterwards personal data is gone."""
    user = make_user(email="weg@example.org", name="Wera Weg")
    login(user)
    bad = client.post_form("/account/delete", {"password": "wrong", "confirm": "on"})
    assert bad.status_code == 400 and 'id="e-password"' in bad.text
    missing = client.post_form("/account/delete", {"password": PASSWORD})
    assert missing.status_code == 400 and 'id="e-confirm"' in missing.text
    ok = client.post_form("/account/delete", {"password": PASSWORD, "confirm": "on"})
    assert ok.status_code == 303
    [stored] = query(db, User, User.id == user.id)
    assert stored.email is None and stored.password_hash is None and stored.deleted_at is not None
    assert stored.display_name != "Wera Weg"
    assert client.get("/account").status_code == 303


def test_suspended_user_cannot_log_in(client, db, make_user):
    """A suspended account is refused at login with a clear message."""
    from app.database import new_session, utcnow

    user = make_user()
    with new_session(db.engine) as s:
        stored = s.get(User, user.id)
        stored.suspended_until = utcnow() + dt.timedelta(days=3)
        s.commit()
    response = client.post_form("/login", {"email": user.email, "password": PASSWORD})
    assert response.status_code == 400 and "gesperrt" in response.text
