"""Proposals in a real Chromium: writing with the htmx preview and publishing (real CSP), supporting and
un-supporting with htmx (count updates in place, focus kept), filtering and searching the list with and
without JavaScript, and axe-core on the list, the proposal page, the form, a theme page and home."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import assert_no_console_errors, check_a11y, console_log
from tests.conftest import PASSWORD
from tests.proposals.proposal_helpers import district, make_proposal, theme


def log_in(page, email: str) -> None:
    page.goto("/login")
    page.locator("#f-email").fill(email)
    page.locator("#f-password").fill(PASSWORD)
    page.locator("main").get_by_role("button", name="Anmelden", exact=True).click()
    expect(page.locator("header .account-link")).to_be_visible()


def button(page, name: str):
    return page.locator("main").get_by_role("button", name=name, exact=True)


def test_create_with_htmx_preview_then_publish(new_page, make_user, db):
    """Under the real CSP: the "Vorschau" button renders the sanitised preview in place (no reload, nothing
    stored), then "Veröffentlichen" publishes and opens the proposal page."""
    author = make_user(name="Petra Plan")
    page = new_page(bypass_csp=False)
    log_in(page, author.email)
    page.goto("/proposals/new")
    expect(page.get_by_role("heading", level=1)).to_have_text("Vorschlag schreiben")
    page.get_by_label("Titel").fill("Mehr Licht im Nordpark")
    page.get_by_label("Zusammenfassung").fill("Neue Laternen für den Weg am Teich.")
    page.get_by_label("Beschreibung").fill(
        "Der Weg ist **dunkel**.\n\n<script>alert(1)</script>\n\n- Lampe A"
    )
    page.get_by_label("Themenfeld").select_option(str(theme(db).id))
    page.get_by_label("Stadtbezirk").select_option(str(district(db, 3).id))
    page.get_by_label("Geschätzte Kosten in Euro (optional)").fill("12.500")
    page.evaluate("window.__noReload = 'still here'")

    with page.expect_response(lambda r: r.url.endswith("/proposals/preview")) as info:
        button(page, "Vorschau").click()
    assert info.value.ok
    preview = page.locator("#preview")
    expect(preview.get_by_role("heading", name="Vorschau")).to_be_visible()
    expect(preview.locator("strong")).to_have_text("dunkel")
    expect(preview.locator("li")).to_have_text("Lampe A")
    expect(preview).to_contain_text("<script>alert(1)</script>")  # shown as text
    expect(preview.locator("script")).to_have_count(0)
    assert page.evaluate("window.__noReload") == "still here"
    expect(page).to_have_url(re.compile(r"/proposals/new$"))

    button(page, "Veröffentlichen").click()
    expect(page).to_have_url(re.compile(r"/proposals/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Mehr Licht im Nordpark")
    expect(page.get_by_role("status").first).to_have_text("Ihr Vorschlag wurde veröffentlicht.")
    expect(page.locator(".proposal-body strong")).to_have_text("dunkel")
    expect(page.locator(".facts")).to_contain_text("12.500,00")
    assert_no_console_errors(page)


def test_preview_without_javascript(new_page, make_user, db):
    """With JavaScript off the same button submits the form and the page comes back with the preview."""
    author = make_user()
    page = new_page(java_script_enabled=False)
    log_in(page, author.email)
    page.goto("/proposals/new")
    page.get_by_label("Titel").fill("Mehr Licht im Nordpark")
    page.get_by_label("Beschreibung").fill("Ganz *wichtig*")
    button(page, "Vorschau").click()
    expect(page.locator("#preview em")).to_have_text("wichtig")
    expect(page.get_by_label("Titel")).to_have_value("Mehr Licht im Nordpark")


def test_support_and_unsupport_with_htmx(new_page, make_user, db):
    """Under the real CSP: supporting swaps the count and the button in place (no reload), focus stays on
    the button; withdrawing goes back to 0; a reload shows the stored state."""
    p = make_proposal(db, make_user(), title="Mehr Bänke im Park")
    fan = make_user()
    page = new_page(bypass_csp=False)
    log_in(page, fan.email)
    page.goto(f"/proposals/{p.id}")
    box = page.locator(f"#support-{p.id}")
    expect(box).to_have_attribute("aria-live", "polite")
    expect(box.locator(".support-count strong")).to_have_text("0")
    page.evaluate("window.__noReload = 'still here'")

    button(page, "Diesen Vorschlag unterstützen").click()
    expect(box.locator(".support-count strong")).to_have_text("1")
    withdraw = button(page, "Meine Unterstützung zurückziehen")
    expect(withdraw).to_be_visible()
    expect(withdraw).to_be_focused()
    expect(box).to_contain_text("Sie unterstützen diesen Vorschlag.")
    assert page.evaluate("window.__noReload") == "still here"

    withdraw.click()
    expect(box.locator(".support-count strong")).to_have_text("0")
    expect(button(page, "Diesen Vorschlag unterstützen")).to_be_focused()
    assert page.evaluate("window.__noReload") == "still here"

    button(page, "Diesen Vorschlag unterstützen").click()
    expect(box.locator(".support-count strong")).to_have_text("1")
    page.reload()
    expect(page.locator(f"#support-{p.id} .support-count strong")).to_have_text("1")
    expect(button(page, "Meine Unterstützung zurückziehen")).to_be_visible()

    button(page, "Folgen").click()
    expect(button(page, "Nicht mehr folgen")).to_be_focused()
    assert_no_console_errors(page)


def test_support_without_javascript(new_page, make_user, db):
    p = make_proposal(db, make_user())
    fan = make_user()
    page = new_page(java_script_enabled=False)
    log_in(page, fan.email)
    page.goto(f"/proposals/{p.id}")
    button(page, "Diesen Vorschlag unterstützen").click()
    expect(page).to_have_url(re.compile(rf"/proposals/{p.id}$"))
    expect(page.locator(f"#support-{p.id} .support-count strong")).to_have_text("1")


def _titles(page):
    return page.locator("#results .proposal-card-title a")


def test_filter_and_search_the_list_with_htmx(new_page, make_user, db):
    """Under the real CSP: typing a search term and choosing a theme swap only the result list, push the
    URL, and keep the page; German stemming finds "Fahrradweg" for "Fahrradwege"."""
    author = make_user()
    make_proposal(db, author, title="Sichere Fahrradwege im Tal", body="Ein Fahrradweg.", theme_index=3)
    make_proposal(db, author, title="Mehr Bäume auf dem Werth", body="Schatten.", theme_index=5)
    make_proposal(db, author, title="Bibliothek am Samstag offen", body="Lesen.", theme_index=1)
    page = new_page(bypass_csp=False)
    page.goto("/proposals")
    expect(_titles(page)).to_have_count(3)
    page.evaluate("window.__noReload = 'still here'")

    def is_list(response) -> bool:
        return "/proposals?" in response.url and response.request.headers.get("hx-request") == "true"

    with page.expect_response(is_list):
        page.get_by_label("Vorschläge durchsuchen").fill("Fahrradwege")
    expect(_titles(page)).to_have_count(1)
    expect(_titles(page).first).to_have_text("Sichere Fahrradwege im Tal")
    expect(page).to_have_url(re.compile(r"/proposals\?.*q=Fahrradwege"))
    expect(page.locator("#results-status")).to_contain_text("1 Vorschlag gefunden")

    page.get_by_label("Vorschläge durchsuchen").fill("")
    with page.expect_response(is_list):
        page.get_by_label("Themenfeld").select_option(theme(db, 5).slug)
    expect(_titles(page)).to_have_count(1)
    expect(_titles(page).first).to_have_text("Mehr Bäume auf dem Werth")
    expect(page).to_have_url(re.compile(rf"theme={theme(db, 5).slug}"))
    expect(page.locator("h1")).to_have_count(1)
    assert page.evaluate("window.__noReload") == "still here"
    assert_no_console_errors(page)


def test_filter_and_search_without_javascript(new_page, make_user, db):
    author = make_user()
    make_proposal(db, author, title="Sichere Fahrradwege im Tal", body="Ein Fahrradweg.")
    make_proposal(db, author, title="Mehr Bäume auf dem Werth", body="Schatten.")
    page = new_page(java_script_enabled=False)
    page.goto("/proposals")
    page.get_by_label("Vorschläge durchsuchen").fill("Bäume")
    button(page, "Anwenden").click()
    expect(page).to_have_url(re.compile(r"/proposals\?.*q=B%C3%A4ume"))
    expect(_titles(page)).to_have_count(1)
    expect(_titles(page).first).to_have_text("Mehr Bäume auf dem Werth")


def test_pages_pass_axe(page, make_user, db):
    """axe-core: home (with activity and latest proposals), the list, a theme page, a proposal page with
    history, versions and attachments list, the form (also with errors), the review queue."""
    author, staff = make_user(name="Petra Plan"), make_user("staff", name="Stefan Staff")
    p = make_proposal(
        db, author, title="Mehr Licht im Nordpark", address="Nordpark", lat=51.25, lon=7.15, cost=1250
    )
    make_proposal(db, author, title="Rathaus prüft diese Idee", status="under_review", staff=staff)
    make_proposal(db, author, title="Eine angenommene Idee", status="accepted", staff=staff)
    page.goto("/")
    expect(page.locator(".latest .proposal-card")).to_have_count(3)
    check_a11y(page, "home with proposals")
    page.goto("/proposals")
    check_a11y(page, "proposal list")
    page.goto(f"/themes/{theme(db).slug}")
    check_a11y(page, "theme page")
    page.goto(f"/proposals/{p.id}")
    expect(page.get_by_role("link", name="Auf OpenStreetMap anzeigen")).to_be_visible()
    check_a11y(page, "proposal page, anonymous")

    log_in(page, author.email)
    page.goto(f"/proposals/{p.id}")
    check_a11y(page, "proposal page, author")
    page.goto("/proposals/new")
    check_a11y(page, "create form")
    console_log(page).allow("status of 400")
    page.get_by_label("Titel").fill("kurz")
    button(page, "Veröffentlichen").click()
    expect(page.locator("#e-title")).to_be_visible()
    expect(page.get_by_label("Titel")).to_have_attribute("aria-invalid", "true")
    check_a11y(page, "create form with errors")
    page.goto(f"/proposals/{p.id}/edit")
    check_a11y(page, "edit form")

    page.context.clear_cookies()
    log_in(page, staff.email)
    page.goto("/proposals/review")
    check_a11y(page, "review queue")
    page.goto(f"/proposals/{p.id}/status")
    check_a11y(page, "status form")
