"""Moderation in a real Chromium: a resident reports a comment, a moderator hides it from the queue with a
statement of reasons, the author sees the notice and appeals, a second moderator decides; axe-core passes
on the report form, the queue, the item page, the notices, the appeal pages and the transparency report."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app.database import new_session
from moderation import routes as moderation_routes
from moderation import services
from moderation import visibility as moderation_visibility
from moderation.models import Appeal, ModerationDecision
from tests.browser.conftest import check_a11y, console_log
from tests.conftest import PASSWORD, query
from tests.proposals.factories import make_comment, make_proposal


@pytest.fixture
def server(live_server, db):
    """The live server with the moderation routes, visibility filters and default grounds."""
    moderation_visibility.install()
    names = {getattr(r, "name", None) for r in live_server.app.router.routes}
    if "moderation_queue" not in names:
        live_server.app.router.routes[0:0] = moderation_routes.routes
    from voting import platform_log

    platform_log.install(live_server.settings)
    with new_session(db.engine) as s:
        services.ensure_default_grounds(s)
        s.commit()
    return live_server


def log_in(page, email: str) -> None:
    page.goto("/login")
    page.locator("#f-email").fill(email)
    page.locator("#f-password").fill(PASSWORD)
    page.locator("main").get_by_role("button", name="Anmelden", exact=True).click()
    expect(page.locator("header .account-link")).to_be_visible()


def test_report_hide_notice_appeal_decide(server, new_page, db, make_user, mailbox):
    author = make_user(name="Anna Autorin")
    resident = make_user(name="Rita Resident")
    first = make_user("moderator", name="Moritz Moderator")
    second = make_user("moderator", name="Mara Moderatorin")
    proposal = make_proposal(db, make_user(), title="Mehr Bänke am Mirker Bach")
    comment = make_comment(db, proposal, author, "Ihr habt alle keine Ahnung, Idioten!")

    # a resident reports the comment from the proposal page (htmx answer in the live region)
    page = new_page()
    log_in(page, resident.email)
    page.goto(f"/proposals/{proposal.id}")
    page.locator(f"#comment-article-{comment.id}").get_by_role("link", name="Melden").click()
    expect(page.get_by_role("heading", name="Inhalt melden", level=1)).to_be_visible()
    check_a11y(page, "report form")
    console_log(page).allow("status of 400")  # the browser logs the 400 that carries the field error
    page.get_by_role("button", name="Meldung senden").click()  # no category: the error appears inline (htmx)
    expect(page.locator("#e-category")).to_be_visible()
    expect(page.locator("#f-category")).to_have_attribute("aria-invalid", "true")
    page.locator("#f-category").select_option("insult")
    page.locator("#f-explanation").fill("Beleidigt alle anderen.")
    page.get_by_role("button", name="Meldung senden").click()
    expect(page.locator("#report-result [role=status]")).to_contain_text("Vielen Dank")

    # the first moderator hides it from the queue with a statement
    mod_page = new_page()
    log_in(mod_page, first.email)
    mod_page.goto("/moderation")
    check_a11y(mod_page, "moderation queue")
    mod_page.get_by_role("link", name=f"Kommentar #{comment.id}").click()
    expect(mod_page.locator(".mod-quote")).to_contain_text("Idioten")
    check_a11y(mod_page, "moderation item")
    mod_page.locator("#f-action").select_option("hide")
    mod_page.locator("#f-ground").select_option(label="§ 185 StGB Beleidigung")
    mod_page.locator("#f-statement").fill("Der Kommentar beleidigt andere Teilnehmende.")
    mod_page.get_by_role("button", name="Entscheidung speichern").click()
    expect(mod_page.locator("#decision [role=status]")).to_contain_text("Entscheidung gespeichert")
    page.goto(f"/proposals/{proposal.id}")
    expect(page.locator("main")).not_to_contain_text("Idioten")

    # the author sees the notice and appeals
    author_page = new_page()
    log_in(author_page, author.email)
    author_page.goto("/moderation/notices")
    expect(author_page.locator("main")).to_contain_text("Der Kommentar beleidigt andere Teilnehmende.")
    check_a11y(author_page, "notices")
    author_page.get_by_role("link", name="Dieser Entscheidung widersprechen").click()
    check_a11y(author_page, "appeal form")
    author_page.locator("#f-text").fill("Das war eine Zuspitzung, keine Beleidigung.")
    author_page.get_by_role("button", name="Widerspruch senden").click()
    expect(author_page.locator(".flash-success")).to_be_visible()
    [appeal] = query(db, Appeal)

    # the first moderator may not decide the appeal; the second one does
    console_log(mod_page).allow("status of 403")
    response = mod_page.goto(f"/moderation/appeals/{appeal.id}")
    assert response is not None and response.status == 403
    expect(mod_page.locator("main h1")).not_to_have_text("Über einen Widerspruch entscheiden")
    second_page = new_page()
    log_in(second_page, second.email)
    second_page.goto("/moderation")
    second_page.get_by_role("link", name="Widerspruch gegen: Verbergen", exact=False).click()
    check_a11y(second_page, "appeal decision")
    second_page.locator("#f-outcome").select_option("confirm")
    second_page.locator("#f-statement").fill("Die Beleidigung ist eindeutig; die Entscheidung bleibt.")
    second_page.get_by_role("button", name="Über den Widerspruch entscheiden (endgültig)").click()
    expect(second_page.locator(".flash-success")).to_be_visible()
    final = query(db, ModerationDecision, ModerationDecision.appeal_of_id.is_not(None))[0]
    assert final.moderator_id == second.id and final.action == "confirm"

    author_page.goto("/moderation/notices")
    expect(author_page.locator("main")).to_contain_text("Die Beleidigung ist eindeutig")
    expect(author_page.locator("main")).to_contain_text("endgültig")
    second_page.goto("/transparency")
    check_a11y(second_page, "transparency report")
