"""Council staff in a real Chromium: creating a process through the form (field errors, then success),
adding a project, and the published results page with its SVG chart and table; axe-core finds no serious
or critical violations on any of these pages, and the pages log no console errors (CSP included)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from app.database import new_session
from app.models import Role
from tests.browser.conftest import assert_no_console_errors, check_a11y, console_log
from tests.browser.test_ballot import log_in
from tests.conftest import query
from tests.voting.test_admin_processes import mount_staff
from tests.voting.test_results import voted_process
from voting.models import Process, Project


@pytest.fixture(autouse=True)
def _routes(live_server):
    mount_staff(live_server.app)


def test_staff_create_a_process_and_add_a_project(page, db, make_user):
    """The form reports errors next to the fields, then creates the process; a project is added."""
    staff = make_user(Role.STAFF, name="Stadtkämmerei")
    log_in(page, staff.email)
    page.goto("/staff")
    expect(page.get_by_role("heading", level=1)).to_have_text("Verwaltung")
    check_a11y(page, "staff dashboard")
    page.get_by_role("link", name="Verfahren anlegen").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Verfahren anlegen")
    check_a11y(page, "process form")
    page.get_by_label("Titel").fill("Bürgerbudget 2027")
    page.get_by_label("Budget der stadtweiten Abstimmung in Euro").fill("-5")
    console_log(page).allow("status of 400")  # the form answers invalid input with 400
    page.get_by_role("button", name="Verfahren anlegen").click()
    expect(page.locator("#e-budget")).to_be_visible()
    check_a11y(page, "process form with errors")
    page.get_by_label("Budget der stadtweiten Abstimmung in Euro").fill("250.000")
    page.get_by_label("Beginn der Abstimmung").fill("2027-05-01T09:00")
    page.get_by_label("Ende der Abstimmung").fill("2027-05-31T18:00")
    page.get_by_role("button", name="Verfahren anlegen").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Projekte")
    (process,) = query(db, Process)
    assert process.budget_cents == 250_000_00
    check_a11y(page, "projects page")
    form = page.locator("form[action$='/projects']")
    form.get_by_label("Titel").fill("Trinkbrunnen am Döppersberg")
    form.get_by_label("Kosten in Euro").fill("48.000")
    form.get_by_role("button", name="Projekt hinzufügen").click()
    expect(page.locator("#projects-table")).to_contain_text("Trinkbrunnen am Döppersberg")
    assert [p.cost_cents for p in query(db, Project)] == [48_000_00]
    page.goto(f"/staff/processes/{process.id}/preflight")
    check_a11y(page, "preflight")
    assert_no_console_errors(page)


def test_results_page_chart_table_and_print(page, new_page, db, make_user, live_server):
    """The published results: an SVG chart exposed as one image with its title, the table with the same
    numbers, explanations; axe-clean; the print stylesheet hides navigation."""
    process = voted_process(db, live_server.app, make_user, rule="mes")
    page.goto(f"/processes/{process.id}/results")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Ergebnisse")
    chart = page.get_by_role("img", name=re.compile("Stimmen pro Projekt"))
    expect(chart).to_be_visible()
    rows = page.locator("table.results-table tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("C Bäume")
    expect(page.locator("table.results-table")).to_contain_text("hätte 40,00")
    check_a11y(page, "results page")
    page.emulate_media(media="print")
    expect(page.locator(".site-header")).to_be_hidden()
    expect(page.locator("table.results-table")).to_be_visible()
    assert_no_console_errors(page)
    strict = new_page(bypass_csp=False)  # the real CSP: no inline styles or scripts on the page
    strict.goto(f"/processes/{process.id}/results?print=1")
    expect(strict.locator("svg.chart")).to_be_visible()
    assert_no_console_errors(strict)
    with new_session(db.engine) as s:
        assert s.get(Process, process.id).results_published_at is not None


def test_staff_pages_are_axe_clean(page, db, make_user, live_server):
    """Comparison, statistics, exports, archive import and project editing pass axe-core too."""
    process = voted_process(db, live_server.app, make_user, publish=False)
    project = query(db, Project)[0]
    log_in(page, make_user(Role.ADMIN).email)
    for path, heading in [
        (f"/staff/processes/{process.id}/compare", "Verfahren vergleichen"),
        ("/staff/statistics", "Statistik"),
        ("/staff/exports", "Exporte"),
        ("/staff/processes/import-pb", "Archivierte Abstimmung importieren (pabulib)"),
        (f"/staff/processes/{process.id}/edit", "Verfahren bearbeiten"),
        (f"/staff/processes/{process.id}/projects/{project.id}/edit", "Projekt bearbeiten"),
        (f"/staff/processes/{process.id}/voting", "Abstimmung verwalten"),
    ]:
        page.goto(path)
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        check_a11y(page, path)
    page.goto(f"/staff/processes/{process.id}/compare")
    expect(page.locator("tr.changes")).to_have_count(2)
