"""Two-factor sign-in in a real Chromium: a staff member is made to enrol at login (QR code and key,
a wrong code first, then the real TOTP code), sees the recovery codes once, and signs in again with the
next code; axe-core finds no serious or critical violations on these pages, and the QR code page raises
no console errors with the Content-Security-Policy enforced."""

from __future__ import annotations

import dataclasses
import time

import pyotp
from playwright.sync_api import expect

from app.models import Role
from tests.browser.conftest import assert_no_console_errors, check_a11y, console_log
from tests.browser.test_ballot import log_in
from tests.conftest import PASSWORD


def _password(page, email: str) -> None:
    page.goto("/login")
    page.locator("#f-email").fill(email)
    page.locator("#f-password").fill(PASSWORD)
    page.locator("main").get_by_role("button", name="Anmelden", exact=True).click()


def test_staff_enrols_at_login_and_signs_in_with_totp(page, live_server, make_user):
    """ASVS V6.3.3: the staff member gets no session before the second factor is set up and used."""
    live_server.app.state.settings = dataclasses.replace(
        live_server.settings, two_factor_required_roles="moderator,staff,admin"
    )
    staff = make_user(Role.STAFF, name="Kämmerei")
    _password(page, staff.email)
    expect(page).to_have_url(f"{live_server.url}/login/2fa/enrol")
    expect(page.locator("svg.qr-code")).to_be_visible()
    check_a11y(page, "forced enrolment")
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    totp = pyotp.TOTP(secret)
    wrong = next(
        c for c in ("123456", "654321", "000001") if c not in {totp.now(), totp.at(time.time() + 30)}
    )
    page.locator("#f-code").fill(wrong)
    console_log(page).allow("status of 400")
    page.locator("main button[type=submit]").click()
    expect(page.locator("#e-code")).to_be_visible()
    check_a11y(page, "enrolment with a wrong code")
    page.locator("#f-code").fill(totp.now())
    page.locator("main button[type=submit]").click()
    expect(page.locator(".recovery-codes li")).to_have_count(10)
    check_a11y(page, "recovery codes")
    page.locator("main a.button").click()
    expect(page.locator("header .account-link")).to_be_visible()
    page.goto("/account/2fa")
    check_a11y(page, "two-factor settings")
    page.locator("header").get_by_role("button", name="Abmelden").click()
    expect(page.locator("header .account-link")).to_have_count(0)

    _password(page, staff.email)
    expect(page).to_have_url(f"{live_server.url}/login/2fa")
    expect(page.locator("header .account-link")).to_have_count(0)
    check_a11y(page, "second factor")
    page.locator("#f-code").fill(totp.at(time.time() + 30))  # the enrolment used the current step
    page.locator("main button[type=submit]").click()
    expect(page.locator("header .account-link")).to_be_visible()
    assert_no_console_errors(page)


def test_qr_code_page_passes_the_content_security_policy(new_page, make_user):
    """The inline SVG has no style attributes, so the enforced CSP reports nothing."""
    page = new_page(bypass_csp=False)
    resident = make_user()
    log_in(page, resident.email)
    page.goto("/account/2fa")
    page.locator("main a.button").click()
    expect(page.locator("svg.qr-code")).to_be_visible()
    assert page.locator("svg.qr-code").bounding_box()["width"] > 100
    assert_no_console_errors(page)
