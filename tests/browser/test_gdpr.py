"""Data-subject flows in a real Chromium: download one's data (password, one-time link, a JSON file) and
delete the account; the record of processing activities prints without navigation."""

from __future__ import annotations

import json
import re

from playwright.sync_api import expect

from app.models import Role
from tests.browser.conftest import assert_no_console_errors, check_a11y, console_log
from tests.browser.test_flows import log_in


def test_download_my_data_then_delete_the_account(page, db, make_user):
    user = make_user(name="Erika Export")
    log_in(page, user.email)
    page.goto("/account")
    page.locator('main a[href="/account/export"]').click()
    expect(page).to_have_url(re.compile(r"/account/export$"))
    check_a11y(page, "export page")

    page.locator("#f-password").fill("wrong password!")
    console_log(page).allow("status of 400")
    page.locator("main form button[type=submit]").click()
    expect(page.locator("#e-password")).to_be_visible()
    expect(page.locator("#f-password")).to_have_attribute("aria-invalid", "true")
    check_a11y(page, "export page with error")

    page.locator("#f-password").fill("correct horse battery")
    with page.expect_download() as info:
        page.locator("main form button[type=submit]").click()
    download = info.value
    assert re.fullmatch(r"mitmachen-data-\d+-\d{8}\.json", download.suggested_filename)
    data = json.loads(open(download.path(), encoding="utf-8").read())
    assert data["account"]["email"] == user.email and data["account"]["display_name"] == "Erika Export"
    assert "password_hash" not in data["account"]
    # the download link was used: opening it again shows that it is gone
    console_log(page).allow("status of 410")
    page.goto(download.url)
    expect(page.locator("main h1")).to_be_visible()
    check_a11y(page, "used export link")

    page.goto("/account/delete")
    page.locator("#f-password").fill("correct horse battery")
    page.locator("#f-confirm").check()
    page.locator("main form button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("status")).to_be_visible()
    expect(page.locator("header .account-link")).to_have_count(0)
    assert_no_console_errors(page)


def test_account_without_password_confirms_by_mail_then_downloads_and_deletes(page, db, make_user, mailbox):
    """An account without a password (as OpenID Connect creates them): no password field, a confirmation
    link by e-mail opened in the same browser, then the download and the deletion (app/accounts/reauth.py)."""
    from tests.app.test_reauth import remove_password

    user = make_user(name="Olga Ohnepass")
    log_in(page, user.email)
    remove_password(db, user)
    page.goto("/account/export")
    expect(page.locator("#f-password")).to_have_count(0)
    check_a11y(page, "export page without password")
    page.locator("main form.reauth-mail button[type=submit]").click()
    expect(page.get_by_role("status")).to_be_visible()
    page.goto(mailbox.link(user.email, "/account/confirm/gdpr_export/"))
    expect(page).to_have_url(re.compile(r"/account/export$"))
    expect(page.locator("main form.reauth-mail")).to_have_count(0)
    check_a11y(page, "export page confirmed by e-mail")
    with page.expect_download() as info:
        page.locator('main form[action="/account/export"] button[type=submit]').click()
    data = json.loads(open(info.value.path(), encoding="utf-8").read())
    assert data["account"]["display_name"] == "Olga Ohnepass"

    page.goto("/account/delete")
    expect(page.locator("#f-confirm")).to_have_count(0)  # not before the e-mail confirmation
    page.locator("main form.reauth-mail button[type=submit]").click()
    page.goto(mailbox.link(user.email, "/account/confirm/delete_account/"))
    expect(page).to_have_url(re.compile(r"/account/delete$"))
    check_a11y(page, "delete page confirmed by e-mail")
    page.locator("#f-confirm").check()
    page.locator('main form[action="/account/delete"] button[type=submit]').click()
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.locator("header .account-link")).to_have_count(0)
    assert_no_console_errors(page)


def test_record_of_processing_activities_prints(page, db, make_user):
    staff = make_user(Role.STAFF)
    log_in(page, staff.email)
    page.goto("/admin/processing")
    expect(page.locator("section.processing-activity")).to_have_count(8)
    check_a11y(page, "record of processing activities")
    page.emulate_media(media="print")
    expect(page.locator(".site-header")).to_be_hidden()
    expect(page.locator("section.processing-activity").first).to_be_visible()
    assert_no_console_errors(page)
