""" "Check my ballot" in a real Chromium: the form, a pasted receipt, a typed ballot ID and index, form
errors; axe-clean in every state, and with the real CSP (the page needs no JavaScript)."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest
from playwright.sync_api import expect

from app.database import new_session
from tests.browser.conftest import check_a11y, console_log
from voting import audit_routes, keys, receipts

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "voting"))
from test_bundle import build_process  # noqa: E402


@pytest.fixture
def live_server(live_server, tmp_path):
    """The conftest's live server with the audit routes mounted (as app/main.py does) and the signing key
    kept in a temporary data folder."""
    app = live_server.app
    app.state.settings = dataclasses.replace(app.state.settings, data_dir=str(tmp_path / "data"))
    if "/audit/check" not in {getattr(r, "path", None) for r in app.router.routes}:
        app.router.routes[0:0] = audit_routes.routes
    return live_server


@pytest.fixture
def receipt(db, live_server) -> dict:
    key = keys.load_or_create(keys.key_path(live_server.app.state.settings))
    built = build_process(db.engine, key=key, voters=12, replaced=2)
    uid = max(built.ballots, key=built.ballots.get)
    with new_session(db.engine, write=True) as s:
        r = receipts.receipt(s, log_id=built.log_id, index=built.ballots[uid], key=key)
        s.commit()
    return r


def submit(page) -> None:
    page.locator("main").get_by_role("button", name="Stimmzettel prüfen").click()


def test_check_a_pasted_receipt(page, receipt):
    page.goto("/audit/check")
    expect(page.get_by_role("heading", level=1)).to_have_text("Meinen Stimmzettel prüfen")
    check_a11y(page, "check form")
    page.get_by_label("Quittung (JSON-Datei)").fill(json.dumps(receipt))
    submit(page)
    status = page.locator("#check-result [role=status]")
    expect(status).to_contain_text("wird in dieser Fassung gezählt")
    expect(page.locator("#check-result")).to_contain_text(receipt["entry_hash"])
    expect(page.locator("#check-result")).to_contain_text("Der Beweis ist gültig")
    expect(page.locator("#check-result")).to_contain_text(
        "Das Protokoll ist seit Ihrer Quittung nur gewachsen"
    )
    check_a11y(page, "check result")
    page.get_by_text("So rechnen Sie es selbst nach").click()
    expect(page.get_by_role("link", name="Einschlussbeweis")).to_be_visible()


def test_check_by_ballot_id_and_index_with_the_real_csp(new_page, receipt):
    page = new_page(bypass_csp=False)
    page.goto("/audit/check")
    page.get_by_label("Stimmzettel-ID").fill(receipt["ballot"])
    page.get_by_label("Blattindex").fill(str(receipt["index"]))
    submit(page)
    expect(page.locator("#check-result [role=status]")).to_contain_text("wird in dieser Fassung gezählt")


def test_check_form_errors_are_next_to_the_fields(page, receipt):
    console_log(page).allow("status of 400")  # invalid input answers 400 with the form
    page.goto("/audit/check")
    submit(page)
    expect(page.locator("#e-ballot")).to_be_visible()
    expect(page.locator("#e-index")).to_contain_text("Blattindex")
    expect(page.locator("#f-ballot")).to_have_attribute("aria-invalid", "true")
    check_a11y(page, "check form with errors")
    page.get_by_label("Quittung (JSON-Datei)").fill("{kaputt")
    submit(page)
    expect(page.locator("#e-receipt")).to_contain_text("Das ist keine Quittung")
    page.get_by_label("Quittung (JSON-Datei)").fill("")
    page.get_by_label("Stimmzettel-ID").fill("a" * 32)
    page.get_by_label("Blattindex").fill("2")
    submit(page)
    expect(page.locator("#check-result [role=status]")).to_contain_text("kein Stimmzettel mit dieser ID")
    check_a11y(page, "check result: not found")
