"""Resident verification in a real Chromium: staff upload a register extract and print the letter codes; a
resident who is refused in a verified-only process follows the link, enters the code from the letter and
votes. axe-core finds no serious or critical violations on these pages."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from app.models import Role
from tests.browser.conftest import assert_no_console_errors, check_a11y, console_log
from tests.browser.test_ballot import log_in
from tests.conftest import query
from tests.voting.test_ballots import make_process
from voting.models import Ballot
from voting.verification_models import RegisterEntry

REGISTER = "Referenz;PLZ;Geburtsjahr\nW-0001;42103;1980\nW-0002;42275;2001\n"


def test_staff_upload_resident_enters_code_and_votes(new_page, db, make_user, tmp_path):
    process = make_process(db, require_verified=True)
    staff = make_user(Role.STAFF, name="Bürgerbüro")
    page = new_page()
    log_in(page, staff.email)
    page.goto("/staff/verification")
    check_a11y(page, "verification staff page")
    csv_file = tmp_path / "register.csv"
    csv_file.write_text(REGISTER, encoding="utf-8")
    upload = page.locator('form[action="/staff/verification/upload"]')
    upload.locator("#f-name").fill("Bürgerbudget 2027")
    upload.locator("#f-process_id").select_option(str(process.id))
    upload.locator("#f-file").set_input_files(str(csv_file))
    upload.locator("button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/staff/verification/registers/\d+$"))
    expect(page.locator(".figures dd").first).to_have_text("2")
    check_a11y(page, "register page")
    page.locator(".print-pages a").first.click()
    expect(page.locator(".code-card")).to_have_count(2)
    check_a11y(page, "printable codes")
    code = page.locator(".code-card-code code").nth(1).inner_text()
    assert re.fullmatch(r"[0-9A-Z]{4}(-[0-9A-Z]{4}){3}", code)

    resident = new_page()
    voter = make_user(name="Rosa Bürgerin")
    log_in(resident, voter.email)
    resident.goto(f"/processes/{process.id}")
    check_a11y(resident, "process page, not verified")
    resident.locator(f'a[href="/account/verify?next=/processes/{process.id}"]').click()
    expect(resident).to_have_url(re.compile(r"/account/verify\?next="))
    check_a11y(resident, "verification page")
    console_log(resident).allow("status of 400")  # the wrong code first
    resident.locator("#f-code").fill("ABCD-EFGH-JKMN-PQRS")
    resident.locator("main form button[type=submit]").click()
    expect(resident.locator("#e-code")).to_be_visible()
    check_a11y(resident, "verification page with an error")
    resident.locator("#f-code").fill(code.lower().replace("-", " "))
    resident.locator("main form button[type=submit]").click()
    expect(resident).to_have_url(re.compile(rf"/processes/{process.id}$"))
    resident.get_by_role("link", name="Abstimmen: Stadtweiter Stimmzettel").click()
    resident.get_by_label("„Stadtbäume“ wählen").check()
    resident.get_by_role("button", name="Weiter zur Bestätigung").click()
    resident.get_by_role("button", name="Stimmzettel abgeben").click()
    expect(resident.get_by_role("heading", level=1)).to_have_text("Ihre Quittung")
    assert len(query(db, Ballot, Ballot.process_id == process.id)) == 1
    (entry,) = query(db, RegisterEntry, RegisterEntry.used_by_user_id == voter.id)
    assert entry.reference == "W-0002"
    assert_no_console_errors(resident)
