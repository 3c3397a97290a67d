"""Budget votes in a real Chromium: approval and knapsack ballots built with htmx (the summary and the
remaining budget update live), confirmation, casting and the receipt; the same ballot without JavaScript;
the ranked ballot's reordering; axe-core on the process, ballot, confirmation, receipt and staff pages."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from app.models import Role
from tests.browser.conftest import assert_no_console_errors, check_a11y, console_log
from tests.conftest import PASSWORD, query
from tests.voting.test_ballots import make_process, mount_voting
from voting.models import Ballot


@pytest.fixture(autouse=True)
def _routes(live_server):
    mount_voting(live_server.app)


def log_in(page, email: str) -> None:
    page.goto("/login")
    page.locator("#f-email").fill(email)
    page.locator("#f-password").fill(PASSWORD)
    page.locator("main").get_by_role("button", name="Anmelden", exact=True).click()
    expect(page.locator("header .account-link")).to_be_visible()


def choose(page, title: str):
    return page.get_by_label(f"„{title}“ wählen")


def is_preview(response) -> bool:
    return "/ballot/preview" in response.url and response.request.headers.get("hx-request") == "true"


def test_approval_ballot_with_htmx_confirm_cast_receipt(page, db, make_user):
    """A resident builds an approval ballot; each change updates the summary through htmx (no reload); the
    confirmation lists the choice; casting shows the receipt. axe passes on every page."""
    process = make_process(db, max_choices=3)
    user = make_user(name="Rita Wählerin")
    log_in(page, user.email)
    page.goto(f"/processes/{process.id}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Bürgerbudget Test")
    check_a11y(page, "process page")
    page.get_by_role("link", name="Abstimmen: Stadtweiter Stimmzettel").click()
    expect(page).to_have_url(re.compile(rf"/processes/{process.id}/ballot\?scope=0$"))
    check_a11y(page, "ballot page")
    page.evaluate("window.__noReload = 'still here'")

    with page.expect_response(is_preview):
        choose(page, "Stadtbäume").check()
    expect(page.locator("#chosen-count")).to_have_text("1 / 3")
    with page.expect_response(is_preview):
        choose(page, "Bibliothek am Abend").check()
    expect(page.locator("#chosen-count")).to_have_text("2 / 3")
    expect(page.locator("#total-cost")).to_contain_text("180.000,00")
    expect(page.locator(".summary-list")).to_contain_text("Stadtbäume")
    expect(page.locator("#summary-problem")).to_contain_text("vollständig und gültig")
    assert page.evaluate("window.__noReload") == "still here"
    check_a11y(page, "ballot with summary")

    page.get_by_role("button", name="Weiter zur Bestätigung").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Stimmzettel bestätigen")
    expect(page.locator(".confirm-list")).to_contain_text("Bibliothek am Abend")
    check_a11y(page, "confirmation")
    page.get_by_role("button", name="Stimmzettel abgeben").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Ihre Quittung")
    expect(page.get_by_role("status")).to_contain_text("Ihr Stimmzettel wurde abgegeben")
    (ballot,) = query(db, Ballot, Ballot.process_id == process.id)
    expect(page.locator("#receipt-ballot")).to_have_text(ballot.ballot_uid)
    expect(page.locator("#receipt-index")).to_have_text(str(ballot.log_index))
    check_a11y(page, "receipt")


def test_knapsack_remaining_budget_updates_live_under_the_real_csp(new_page, db, make_user):
    """With the app's real CSP: the remaining budget follows every change; an over-budget choice is named
    and cannot be confirmed; removing a project makes it valid again."""
    process = make_process(db, ballot_type="knapsack", budget_cents=300_000_00)
    user = make_user()
    page = new_page(bypass_csp=False)
    log_in(page, user.email)
    page.goto(f"/processes/{process.id}/ballot?scope=0")
    remaining = page.locator("#remaining-budget")
    expect(remaining).to_contain_text("300.000,00")
    with page.expect_response(is_preview):
        choose(page, "Radweg Talachse").check()
    expect(remaining).to_contain_text("120.000,00")
    with page.expect_response(is_preview):
        choose(page, "Stadtbäume").check()
    expect(remaining).to_contain_text("0,00")
    with page.expect_response(is_preview):
        choose(page, "Spielplätze").check()
    expect(remaining).to_contain_text("-95.000,00")
    expect(page.locator("#summary-problem")).to_contain_text("mehr als das Budget")
    console_log(page).allow("status of 400")  # the refused confirmation step answers 400
    page.get_by_role("button", name="Weiter zur Bestätigung").click()
    expect(page.locator("#summary-problem")).to_contain_text("mehr als das Budget")
    expect(page.get_by_role("heading", level=1)).to_have_text("Stadtweiter Stimmzettel")
    with page.expect_response(is_preview):
        choose(page, "Stadtbäume").uncheck()
    expect(remaining).to_contain_text("25.000,00")
    page.get_by_role("button", name="Weiter zur Bestätigung").click()
    page.get_by_role("button", name="Stimmzettel abgeben").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Ihre Quittung")
    assert_no_console_errors(page)
    (ballot,) = query(db, Ballot, Ballot.process_id == process.id)
    assert len(ballot.selection.split(",")) == 2


def test_the_same_ballot_without_javascript(new_page, db, make_user):
    """JavaScript off: "Prüfen" re-renders the page with the summary; confirmation and casting are plain
    forms; the receipt follows."""
    process = make_process(db, ballot_type="knapsack", budget_cents=300_000_00)
    user = make_user()
    page = new_page(java_script_enabled=False)
    log_in(page, user.email)
    page.goto(f"/processes/{process.id}/ballot?scope=0")
    choose(page, "Radweg Talachse").check()
    choose(page, "Trinkbrunnen").check()
    page.get_by_role("button", name="Prüfen", exact=True).click()
    expect(page.locator("#remaining-budget")).to_contain_text("72.000,00")
    expect(choose(page, "Trinkbrunnen")).to_be_checked()
    page.get_by_role("button", name="Weiter zur Bestätigung").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Stimmzettel bestätigen")
    page.get_by_role("button", name="Stimmzettel abgeben").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Ihre Quittung")
    (ballot,) = query(db, Ballot, Ballot.process_id == process.id)
    expect(page.locator("#receipt-ballot")).to_have_text(ballot.ballot_uid)


def test_ranked_ballot_reorders_with_and_without_javascript(new_page, db, make_user):
    """Ranks come from selects; the summary's Up/Down buttons reorder the ranking, by script (focus stays on
    the moved project) or, without JavaScript, by a plain form submit."""
    process = make_process(db, ballot_type="ranked", max_choices=3)
    user = make_user()
    for js in (True, False):
        page = new_page(java_script_enabled=js)
        log_in(page, user.email)
        page.goto(f"/processes/{process.id}/ballot?scope=0")
        page.get_by_label("Rang für „Stadtbäume“").select_option("1")
        page.get_by_label("Rang für „WLAN“").select_option("2")
        if not js:
            page.get_by_role("button", name="Prüfen", exact=True).click()
        items = page.locator(".summary-list li .summary-title")
        expect(items).to_have_text(["Stadtbäume", "WLAN"])
        page.get_by_role("button", name="Nach oben: WLAN").click()
        expect(items).to_have_text(["WLAN", "Stadtbäume"])
        expect(page.get_by_label("Rang für „WLAN“")).to_have_value("1")
        if js:
            expect(page.get_by_role("button", name="Nach unten: WLAN")).to_be_focused()
            check_a11y(page, "ranked ballot")


def test_staff_pages_pass_axe(page, db, make_user):
    """The staff lifecycle page (pre-flight issues, open, close, tally, publish) and the paper ballot page."""
    staff = make_user(Role.STAFF, name="Stefan Stadt")
    broken = make_process(db, phase="preparation", projects=[("Ohne Kosten", None, None, None)])
    process = make_process(db)
    log_in(page, staff.email)
    page.goto(f"/staff/processes/{broken.id}/voting")
    expect(page.locator(".issues")).to_contain_text("Ohne Kosten")
    check_a11y(page, "staff page with issues")
    page.goto(f"/staff/processes/{process.id}/paper")
    page.get_by_label("Abstimmungslokal").fill("Rathaus Barmen")
    page.get_by_label("Nummer des Papierstimmzettels").fill("B-0001")
    choose(page, "Stadtbäume").check()
    page.get_by_role("button", name="Papierstimmzettel erfassen").click()
    expect(page.get_by_role("status")).to_contain_text("zweite Person")
    expect(page.locator(".paper-table")).to_contain_text("B-0001")
    check_a11y(page, "paper ballots")
    page.goto(f"/staff/processes/{process.id}/voting")
    check_a11y(page, "staff page while voting")
    page.get_by_role("button", name="Abstimmung jetzt beenden").click()
    expect(page.get_by_role("status")).to_contain_text("Auszählung läuft")
    expect(page.locator("#tally-status")).to_contain_text("abgeschlossen")
    check_a11y(page, "staff page after closing")
    page.get_by_role("button", name="Ergebnisse veröffentlichen").click()
    page.goto(f"/processes/{process.id}")
    expect(page.locator("#tie-note")).to_have_text(
        "Bei Gleichstand entscheidet die Projekt-ID in aufsteigender Zeichenfolge."
    )
    check_a11y(page, "process page with results")
