"""Re-authentication before the data export and the deletion of an account (app/accounts/reauth.py) for
every kind of account: the password, else the authenticator app's code, else a confirmation link by e-mail
that is signed for one purpose, bound to the user and the session that asked for it, valid for 15 minutes
and usable once.

Accounts without a password (as OpenID Connect creates them) are made by signing in with a password and then
removing the password hash, so the session is a real one."""

from __future__ import annotations

import re
import time

import pyotp
import pytest

from app.accounts import reauth, twofactor
from app.database import new_session
from app.models import User
from app.security import hash_password
from tests.conftest import PASSWORD, Client, query

EXPORT_SEND = 'action="/account/confirm/gdpr_export"'
DELETE_SEND = 'action="/account/confirm/delete_account"'


def remove_password(db, user: User, *, email: bool = True) -> None:
    with new_session(db.engine, write=True) as s:
        stored = s.get(User, user.id)
        stored.password_hash = None
        if not email:
            stored.email = None
        s.commit()


def enrol_totp(app, db, user: User) -> str:
    """An active authenticator app whose enrolment used an earlier time step (so the current code is free)."""
    settings = app.state.settings
    earlier = time.time() - 60
    with new_session(db.engine, write=True) as s:
        stored = s.get(User, user.id)
        secret = twofactor.begin_enrolment(s, settings, stored)
        twofactor.confirm_enrolment(s, settings, stored, pyotp.TOTP(secret).at(earlier), now=earlier)
        s.commit()
    return secret


def passwordless(make_user, login, db, client: Client | None = None, **kwargs) -> User:
    user = make_user(**kwargs)
    login(user, c=client)
    remove_password(db, user)
    return user


def ask_for_link(client: Client, mailbox, user: User, purpose: str) -> str:
    sent = client.post_form(f"/account/confirm/{purpose}")
    assert sent.status_code == 303, sent.text
    url = {"gdpr_export": "/account/export", "delete_account": "/account/delete"}[purpose]
    assert sent.headers["location"] == url
    return mailbox.link(user.email, f"/account/confirm/{purpose}/")


def test_passwordless_account_downloads_its_data_after_the_mailed_link(client, db, make_user, login, mailbox):
    """ASVS V7.5.1: an account without a password re-authenticates by a mailed, session-bound link before
    the export; the confirmation is used up by one export, even if an older session cookie is replayed."""
    user = passwordless(make_user, login, db, name="Olga Ohnepass")
    page = client.get("/account/export")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert 'id="f-password"' not in page.text and 'id="f-code"' not in page.text
    assert EXPORT_SEND in page.text and 'action="/account/export"' not in page.text
    refused = client.post_form("/account/export", {})
    assert refused.status_code == 400 and "location" not in refused.headers
    assert EXPORT_SEND in refused.text

    link = ask_for_link(client, mailbox, user, "gdpr_export")
    [mail] = mailbox.to(user.email)
    body = mailbox.body(mail)
    assert "http://testserver/account/confirm/gdpr_export/" in body and "15" in body
    assert "Olga Ohnepass" in body

    opened = client.get(link)
    assert opened.status_code == 303 and opened.headers["location"] == "/account/export"
    page = client.get("/account/export")
    assert 'action="/account/export"' in page.text and EXPORT_SEND not in page.text
    assert 'id="f-password"' not in page.text

    cookies_before = dict(client.cookies)
    response = client.post_form("/account/export", {})
    assert response.status_code == 303
    download = client.get(response.headers["location"])
    assert download.status_code == 200 and download.json()["account"]["email"] == user.email

    assert client.post_form("/account/export", {}).status_code == 400  # used up
    client.cookies.clear()
    client.cookies.update(cookies_before)  # the cookie from before the export still carries the mark
    replayed = client.post_form("/account/export", {})
    assert replayed.status_code == 400 and "location" not in replayed.headers


def test_passwordless_account_deletes_itself_after_the_mailed_link(client, db, make_user, login, mailbox):
    """ASVS V7.5.1: deleting an account without a password needs the e-mail confirmation and the box."""
    user = passwordless(make_user, login, db)
    page = client.get("/account/delete")
    assert DELETE_SEND in page.text and 'id="f-confirm"' not in page.text
    assert client.post_form("/account/delete", {"confirm": "on"}).status_code == 400
    assert query(db, User, User.id == user.id)[0].deleted_at is None

    assert client.get(ask_for_link(client, mailbox, user, "delete_account")).status_code == 303
    page = client.get("/account/delete")
    assert 'id="f-confirm"' in page.text and 'id="f-password"' not in page.text
    missing = client.post_form("/account/delete", {})
    assert missing.status_code == 400 and 'id="e-confirm"' in missing.text
    done = client.post_form("/account/delete", {"confirm": "on"})  # the confirmation survived the mistake
    assert done.status_code == 303 and done.headers["location"] == "/"
    [stored] = query(db, User, User.id == user.id)
    assert stored.deleted_at is not None and stored.email is None
    assert client.get("/account").status_code == 303


def test_link_works_only_in_the_session_that_asked_for_it(client, app, db, make_user, login, mailbox):
    """ASVS V7.5.1: the link names the session record; another session of the same person, another person
    and an anonymous visitor are refused, and none of them uses it up."""
    user = passwordless(make_user, login, db)
    other = make_user()
    link = ask_for_link(client, mailbox, user, "gdpr_export")
    with Client(app, base_url="http://testserver", follow_redirects=False) as third:
        # the same person in another browser (a password just for signing in there, then gone again)
        with new_session(db.engine, write=True) as s:
            s.get(User, user.id).password_hash = hash_password(PASSWORD)
            s.commit()
        login(user, c=third)
        remove_password(db, user)
        refused = third.get(link)
        assert refused.status_code == 403 and "location" not in refused.headers
        assert third.post_form("/account/export", {}).status_code == 400
    with Client(app, base_url="http://testserver", follow_redirects=False) as someone:
        login(other, c=someone)
        assert someone.get(link).status_code == 404
    with Client(app, base_url="http://testserver", follow_redirects=False) as anonymous:
        assert anonymous.get(link).headers["location"].startswith("/login")
    assert client.get(link).status_code == 303  # still unused
    assert client.post_form("/account/export", {}).status_code == 303


def test_link_works_once(client, db, make_user, login, mailbox):
    user = passwordless(make_user, login, db)
    link = ask_for_link(client, mailbox, user, "gdpr_export")
    assert client.get(link).status_code == 303
    assert client.post_form("/account/export", {}).status_code == 303
    replay = client.get(link)
    assert replay.status_code == 410
    assert client.post_form("/account/export", {}).status_code == 400


def test_expired_link_and_expired_confirmation_are_refused(
    client, db, make_user, login, mailbox, monkeypatch
):
    user = passwordless(make_user, login, db)
    link = ask_for_link(client, mailbox, user, "delete_account")
    monkeypatch.setattr(reauth, "LINK_MINUTES", -1)
    assert client.get(link).status_code == 410
    monkeypatch.setattr(reauth, "LINK_MINUTES", 15)
    monkeypatch.setattr(reauth, "CONFIRMED_MINUTES", -1)  # the mark is written already expired
    assert client.get(link).status_code == 303
    assert client.post_form("/account/delete", {"confirm": "on"}).status_code == 400
    assert query(db, User, User.id == user.id)[0].deleted_at is None


def test_link_and_confirmation_are_bound_to_their_purpose(client, db, make_user, login, mailbox):
    user = passwordless(make_user, login, db)
    link = ask_for_link(client, mailbox, user, "gdpr_export")
    token = link.rsplit("/", 1)[1]
    assert client.get(f"/account/confirm/delete_account/{token}").status_code == 404
    assert client.get(f"/account/confirm/no_such_purpose/{token}").status_code == 404
    assert client.post_form("/account/confirm/no_such_purpose").status_code == 404
    assert client.get(link).status_code == 303  # confirms the export only
    assert client.post_form("/account/delete", {"confirm": "on"}).status_code == 400
    assert query(db, User, User.id == user.id)[0].deleted_at is None
    assert client.get("/account/confirm/gdpr_export/not-a-token").status_code == 404
    assert client.post_form("/account/export", {}).status_code == 303


def test_account_with_app_but_without_password_uses_a_code(client, app, db, make_user, login, mailbox):
    """ASVS V7.5.1 and V6.5.1: without a password, the authenticator code re-authenticates, once per step."""
    user = passwordless(make_user, login, db)
    secret = enrol_totp(app, db, user)
    page = client.get("/account/export")
    assert 'id="f-code"' in page.text and 'id="f-password"' not in page.text and EXPORT_SEND not in page.text
    assert client.post_form("/account/confirm/gdpr_export").status_code == 404  # no link for this account
    empty = client.post_form("/account/export", {})
    assert empty.status_code == 400 and 'id="e-code"' in empty.text
    wrong = client.post_form("/account/export", {"code": pyotp.TOTP(secret).at(time.time() - 3600)})
    assert wrong.status_code == 400 and 'id="e-code"' in wrong.text
    code = pyotp.TOTP(secret).now()
    ok = client.post_form("/account/export", {"code": code})
    assert ok.status_code == 303 and ok.headers["location"].startswith("/account/export/")
    replay = client.post_form("/account/export", {"code": code})
    assert replay.status_code == 400
    next_code = pyotp.TOTP(secret).at(time.time() + 30)  # the next step's code, accepted within the window
    done = client.post_form("/account/delete", {"code": next_code, "confirm": "on"})
    assert done.status_code == 303
    assert query(db, User, User.id == user.id)[0].deleted_at is not None
    assert mailbox.messages == []


def test_password_accounts_keep_the_password_field(client, db, make_user, login, mailbox):
    """ASVS V7.5.1: an account with a password re-authenticates with it; it cannot switch to a mailed link."""
    user = make_user()
    login(user)
    for url, send in (("/account/export", EXPORT_SEND), ("/account/delete", DELETE_SEND)):
        page = client.get(url)
        assert 'id="f-password"' in page.text and 'id="f-code"' not in page.text and send not in page.text
    assert client.post_form("/account/confirm/gdpr_export").status_code == 404
    assert client.post_form("/account/confirm/delete_account").status_code == 404
    assert mailbox.messages == []
    bad = client.post_form("/account/delete", {"password": "wrong password", "confirm": "on"})
    assert bad.status_code == 400 and 'id="e-password"' in bad.text
    assert client.post_form("/account/delete", {"confirm": "on"}).status_code == 400
    assert client.post_form("/account/delete", {"password": PASSWORD, "confirm": "on"}).status_code == 303


def test_account_without_any_method_cannot_confirm(client, db, make_user, login):
    user = make_user()
    login(user)
    remove_password(db, user, email=False)
    page = client.get("/account/delete")
    assert page.status_code == 200
    assert 'action="/account/delete"' not in page.text and DELETE_SEND not in page.text
    assert client.post_form("/account/confirm/delete_account").status_code == 404
    assert client.post_form("/account/delete", {"confirm": "on"}).status_code == 400
    assert query(db, User, User.id == user.id)[0].deleted_at is None


@pytest.fixture
def mail_limit(settings_overrides):
    settings_overrides.update(rate_limit_enabled=True, rate_limit_mail="2/3600")


def test_sending_links_is_rate_limited(mail_limit, client, db, make_user, login, mailbox):
    """ASVS V2.4.1 (rate limits on auth): confirmation mails count against the "mail" limit."""
    user = passwordless(make_user, login, db)
    assert client.post_form("/account/confirm/gdpr_export").status_code == 303
    assert client.post_form("/account/confirm/delete_account").status_code == 303
    limited = client.post_form("/account/confirm/gdpr_export")
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    mailbox.link(user.email, "/account/confirm/delete_account/")
    time.sleep(0.3)
    assert len(mailbox.to(user.email)) == 2


def test_mail_is_in_the_accounts_language(client, db, make_user, login, mailbox):
    user = passwordless(make_user, login, db, locale="en")
    link = ask_for_link(client, mailbox, user, "delete_account")
    [mail] = mailbox.to(user.email)
    assert "Deletion of your account" in mail["Subject"]
    assert re.search(r"/account/confirm/delete_account/[A-Za-z0-9_.\-]+$", link)
