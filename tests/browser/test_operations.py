"""The admin's mail settings in a real Chromium: change the SMTP server, send a test mail (through the
outbox to the SMTP sink), the password never comes back into the page; the page passes axe."""

from __future__ import annotations

import re
import time

from playwright.sync_api import expect

from app.models import Role
from tests.browser.conftest import check_a11y, console_log
from tests.browser.test_flows import log_in


def test_admin_changes_mail_settings_and_sends_a_test_mail(
    page, db, make_user, mailbox, smtp_server, live_server
):
    admin = make_user(Role.ADMIN, email="admin-mail@example.org")
    log_in(page, admin.email)
    page.goto("/admin")
    page.locator("a.tile[href='/admin/mail']").click()
    expect(page).to_have_url(re.compile(r"/admin/mail$"))
    check_a11y(page, "admin mail settings")

    console_log(page).allow("status of 400")  # invalid input answers 400 with the form
    page.locator("#f-smtp_host").fill("bad host")
    page.locator("form[action='/admin/mail'] button[type=submit]").click()
    expect(page.locator("#e-smtp_host")).to_be_visible()
    expect(page.locator("#f-smtp_host")).to_have_attribute("aria-invalid", "true")

    page.locator("#f-backend").select_option("smtp")
    page.locator("#f-smtp_host").fill("127.0.0.1")
    page.locator("#f-smtp_port").fill(str(smtp_server[1]))
    page.locator("#f-smtp_tls").select_option("none")
    page.locator("#f-smtp_password").fill("Geheim-123")
    page.locator("#f-sender").fill("Mitmachen Test <noreply@example.org>")
    page.locator("form[action='/admin/mail'] button[type=submit]").click()
    expect(page.locator(".flash").first).to_be_visible()
    assert "Geheim-123" not in page.content()
    expect(page.locator("#f-smtp_password")).to_have_value("")

    page.locator("#f-to").fill("empfang@example.org")
    page.locator("form[action='/admin/mail/test'] button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/admin/mail$"))
    deadline = time.monotonic() + 5
    while not mailbox.to("empfang@example.org") and time.monotonic() < deadline:
        time.sleep(0.05)
    [msg] = mailbox.to("empfang@example.org")
    assert msg["From"] == "Mitmachen Test <noreply@example.org>"
