"""Sign-in through a real OpenID provider (tests/oidc_provider/server.js) in a real Chromium: the login
page's provider button, the provider's own login and consent forms, and back signed in; the account page's
sign-in methods, the page that asks an existing account for proof, and the error page pass axe.
"""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
from playwright.sync_api import expect

from app.accounts import oidc
from tests.browser.conftest import check_a11y, console_log
from tests.conftest import PASSWORD
from tests.oidc_provider.fixture import start_provider


@pytest.fixture
def provider(live_server):
    """A provider that sends the browser back to this test's live server, configured in the running app."""
    p = start_provider([f"{live_server.url}/login/oidc/test/callback"])
    oidc.clear_cache()
    live_server.app.state.settings = dataclasses.replace(
        live_server.settings, oidc_providers=json.dumps([p.config("test", "Test-ID")])
    )
    yield p
    p.stop()


def sign_in_at_provider(page, account: str) -> None:
    """The provider's development login form (any password), then its consent form."""
    expect(page.locator('input[name="login"]')).to_be_visible()
    page.locator('input[name="login"]').fill(account)
    page.locator('input[name="password"]').fill("any password")
    page.locator('button[type="submit"]').click()
    expect(page.locator('input[name="prompt"][value="consent"]')).to_be_attached()
    page.locator('button[type="submit"]').click()


def test_sign_in_with_provider_creates_account(page, provider, live_server):
    """ASVS V10.2.1 / V6.8.1: login page → provider → back signed in as a new account; the account page lists
    the provider under sign-in methods and offers no way to remove the only one."""
    provider.set_account("anna-browser", email="anna.browser@example.org", name="Anna Browser")
    page.goto("/login?next=/account")
    button = page.locator("main").locator('a[href^="/login/oidc/test"]')
    expect(button).to_contain_text("Test-ID")
    check_a11y(page, "login with a provider button")
    button.click()
    expect(page).to_have_url(re.compile("^" + re.escape(provider.issuer)))
    sign_in_at_provider(page, "anna-browser")
    expect(page).to_have_url(re.compile(re.escape(live_server.url) + r"/account$"))
    expect(page.locator("header").get_by_role("link", name="Anna Browser")).to_be_visible()
    section = page.locator("section[aria-labelledby=signin-methods-h]")
    expect(section).to_contain_text("Test-ID")
    expect(section.locator('form[action="/account/oidc/unlink"]')).to_have_count(0)
    check_a11y(page, "account with sign-in methods")


def test_existing_email_asks_for_proof_then_signs_in(page, provider, live_server, make_user):
    """An e-mail match shows the proof page (axe-checked); the right password links and signs in. A tampered
    callback shows the error page (axe-checked)."""
    make_user(email="bert.browser@example.org", name="Bert Browser")
    provider.set_account("bert-sub", email="bert.browser@example.org", name="Someone")
    page.goto("/login")
    page.locator("main").locator('a[href^="/login/oidc/test"]').click()
    sign_in_at_provider(page, "bert-sub")
    expect(page).to_have_url(re.compile(r"/login/oidc/connect$"))
    expect(page.locator("main")).to_contain_text("bert.browser@example.org")
    check_a11y(page, "connect an existing account")
    page.locator("#f-password").fill(PASSWORD)
    page.locator("main form").first.locator('button[type="submit"]').click()
    expect(page.locator("header").get_by_role("link", name="Bert Browser")).to_be_visible()

    console_log(page).allow("status of 400")  # the error page's own status
    page.goto("/login/oidc/test/callback?code=forged&state=forged")
    expect(page.locator("[data-reason=state]")).to_be_visible()
    check_a11y(page, "sign-in error page")
