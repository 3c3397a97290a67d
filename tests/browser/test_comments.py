"""Comments and notifications in a real Chromium: comment and reply with htmx (no reload), edit and delete,
votes, inline validation errors under the real CSP, the no-JavaScript path, and axe-core on the proposal page
with comments and on the notification pages."""

from __future__ import annotations

import datetime as dt
import re

from playwright.sync_api import expect

from app.database import new_session
from proposals.models import Comment, Notification
from tests.browser.conftest import check_a11y, console_log
from tests.conftest import PASSWORD, query
from tests.proposals.factories import follow, make_comment, make_proposal

MARKER = "window.__noReload = 'still here'"


def log_in(page, email: str) -> None:
    page.goto("/login")
    page.locator("#f-email").fill(email)
    page.locator("#f-password").fill(PASSWORD)
    page.locator("main").get_by_role("button", name="Anmelden", exact=True).click()
    expect(page.locator("header .account-link")).to_be_visible()


def still_same_page(page) -> None:
    assert page.evaluate("window.__noReload") == "still here", "the page was reloaded"


def test_comment_and_reply_with_htmx(page, db, make_user):
    """A new comment and a reply appear inline without a reload; the status region announces them, the
    count updates, the form empties, the reply form opens inline with focus; axe passes before and after."""
    author = make_user(name="Anna Autorin")
    me = make_user(name="Bea Beispiel")
    p = make_proposal(db, author, title="Mehr Bänke am Mirker Bach")
    question = make_comment(db, p, author, "Was meinen Sie dazu?")
    log_in(page, me.email)
    page.goto(f"/proposals/{p.id}")
    check_a11y(page, "proposal page with a comment")
    page.evaluate(MARKER)

    page.locator("#f-body").fill("Mein **erster** Kommentar")
    page.get_by_role("button", name="Kommentar veröffentlichen").click()
    top = page.locator("#comment-list > li")
    expect(top).to_have_count(2)
    expect(top.nth(1).locator(".comment-body strong")).to_have_text("erster")
    expect(top.nth(1).locator(".comment-author")).to_have_text("Bea Beispiel")
    expect(page.locator("#comment-status")).to_have_text("Ihr Kommentar wurde veröffentlicht.")
    expect(page.locator("#comment-count")).to_have_text("2 Kommentare")
    expect(page.locator("#f-body")).to_have_value("")
    still_same_page(page)

    page.locator(f"#comment-article-{question.id}").get_by_role("link", name=re.compile("^Antworten")).click()
    reply_box = page.locator(f"#f-body-r{question.id}")
    expect(reply_box).to_be_focused()
    reply_box.fill("Eine Antwort")
    page.get_by_role("button", name="Antwort veröffentlichen").click()
    replies = page.locator(f"#replies-{question.id} > li")
    expect(replies).to_have_count(1)
    expect(replies.first.locator(".comment-body")).to_have_text("Eine Antwort")
    expect(page.locator(f"#reply-slot-{question.id}")).to_be_empty()
    expect(page.locator("#comment-count")).to_have_text("3 Kommentare")
    still_same_page(page)
    check_a11y(page, "proposal page after comment and reply")

    # the reply form can also be closed again
    page.locator(f"#comment-article-{question.id}").get_by_role("link", name=re.compile("^Antworten")).click()
    expect(page.locator(f"#f-body-r{question.id}")).to_be_visible()
    page.locator(f"#reply-slot-{question.id}").get_by_role("button", name="Abbrechen").click()
    expect(page.locator(f"#reply-slot-{question.id}")).to_be_empty()
    still_same_page(page)

    # the pages used without JavaScript pass axe too
    page.goto(f"/comments/{question.id}/reply")
    expect(page.get_by_role("heading", level=1)).to_have_text("Auf einen Kommentar antworten")
    check_a11y(page, "reply page")
    mine = query(db, Comment, Comment.author_id == me.id, Comment.parent_id.is_(None))[0]
    page.goto(f"/comments/{mine.id}/delete")
    expect(page.get_by_role("heading", level=1)).to_have_text("Ihren Kommentar löschen?")
    check_a11y(page, "delete confirmation page")
    page.goto(f"/comments/{mine.id}/edit")
    expect(page.get_by_role("heading", level=1)).to_have_text("Ihren Kommentar bearbeiten")
    check_a11y(page, "edit page")


def test_edit_and_delete_with_htmx(page, db, make_user):
    """The author edits inline (marked "bearbeitet") and deletes after confirming; the thread stays."""
    author = make_user(name="Anna Autorin")
    me = make_user(name="Erik Editor")
    p = make_proposal(db, author)
    mine = make_comment(db, p, me, "Tippfeler")
    make_comment(db, p, author, "Antwort auf Erik", parent=mine)
    log_in(page, me.email)
    page.goto(f"/proposals/{p.id}")
    page.evaluate(MARKER)

    article = page.locator(f"#comment-article-{mine.id}")
    article.get_by_role("link", name=re.compile("^Bearbeiten")).click()
    box = page.locator(f"#f-body-e{mine.id}")
    expect(box).to_be_focused()
    expect(box).to_have_value("Tippfeler")
    check_a11y(page, "inline edit form")
    box.fill("Tippfehler korrigiert")
    page.get_by_role("button", name="Speichern").click()
    expect(article.locator(".comment-body")).to_have_text("Tippfehler korrigiert")
    expect(article.locator(".comment-edited")).to_contain_text("bearbeitet")
    expect(page.locator("#comment-status")).to_have_text("Ihr Kommentar wurde gespeichert.")
    still_same_page(page)

    page.once("dialog", lambda dialog: dialog.accept())
    article.get_by_role("button", name=re.compile("^Löschen")).click()
    expect(article).to_have_text("Kommentar gelöscht")
    expect(page.locator(f"#comment-{mine.id}")).to_contain_text("Antwort auf Erik")
    expect(page.locator("#comment-count")).to_have_text("1 Kommentar")
    still_same_page(page)
    check_a11y(page, "after deleting")
    page.reload()
    expect(page.locator("main")).not_to_contain_text("Tippfehler korrigiert")


def test_vote_with_htmx(page, db, make_user):
    """Up, switch to down, remove: the pressed state, the counts and the focus follow without a reload."""
    author = make_user(name="Anna Autorin")
    me = make_user()
    p = make_proposal(db, author)
    c = make_comment(db, p, author, "Bitte bewerten")
    log_in(page, me.email)
    page.goto(f"/proposals/{p.id}")
    page.evaluate(MARKER)
    up, down = page.locator(f"#vote-up-{c.id}"), page.locator(f"#vote-down-{c.id}")
    score = page.locator(f"#votes-{c.id} .comment-score")

    up.click()
    expect(up).to_have_attribute("aria-pressed", "true")
    expect(score).to_have_text("1 hilfreich, 0 nicht hilfreich")
    expect(page.locator("#comment-status")).to_have_text("Ihre Bewertung: hilfreich.")
    expect(up).to_be_focused()
    down.click()
    expect(down).to_have_attribute("aria-pressed", "true")
    expect(up).to_have_attribute("aria-pressed", "false")
    expect(score).to_have_text("0 hilfreich, 1 nicht hilfreich")
    down.click()
    expect(down).to_have_attribute("aria-pressed", "false")
    expect(score).to_have_text("0 hilfreich, 0 nicht hilfreich")
    still_same_page(page)
    check_a11y(page, "after voting")


def test_sorting_with_htmx(page, db, make_user):
    """The sort links swap the comment section in place and push the proposal URL with ?sort=."""
    author = make_user(name="Anna Autorin")
    p = make_proposal(db, author)
    old = make_comment(db, p, author, "Alt", age=dt.timedelta(hours=2))
    new = make_comment(db, p, author, "Neu", age=dt.timedelta(hours=1))
    page.goto(f"/proposals/{p.id}")
    page.evaluate(MARKER)
    items = page.locator("#comment-list > li")
    expect(items.first).to_have_attribute("id", f"comment-{old.id}")
    page.get_by_role("navigation", name="Kommentare sortieren").get_by_role(
        "link", name="Neueste zuerst"
    ).click()
    expect(items.first).to_have_attribute("id", f"comment-{new.id}")
    expect(page).to_have_url(re.compile(rf"/proposals/{p.id}\?sort=newest$"))
    link = page.get_by_role("navigation", name="Kommentare sortieren").get_by_role(
        "link", name="Neueste zuerst"
    )
    expect(link).to_have_attribute("aria-current", "true")
    still_same_page(page)
    check_a11y(page, "comments sorted newest first")


def test_inline_errors_and_posting_under_the_real_csp(new_page, db, make_user):
    """With the app's real Content-Security-Policy: a blank comment comes back as a 400 whose field error
    is swapped in by htmx (comments.js), then a valid comment is posted; no CSP violations."""
    author = make_user(name="Anna Autorin")
    me = make_user()
    p = make_proposal(db, author)
    page = new_page(bypass_csp=False)
    console_log(page).allow("status of 400")
    log_in(page, me.email)
    page.goto(f"/proposals/{p.id}")
    page.evaluate(MARKER)
    page.locator("#f-body").fill("   ")
    page.get_by_role("button", name="Kommentar veröffentlichen").click()
    expect(page.locator("#e-body")).to_have_text("Bitte schreiben Sie einen Kommentar.")
    expect(page.locator("#f-body")).to_have_attribute("aria-invalid", "true")
    page.locator("#f-body").fill("Jetzt aber")
    page.get_by_role("button", name="Kommentar veröffentlichen").click()
    expect(page.locator("#comment-list > li")).to_have_count(1)
    expect(page.locator("#e-body")).to_have_count(0)
    still_same_page(page)


def test_commenting_without_javascript(new_page, db, make_user):
    """Without JavaScript: plain forms and post/redirect/get back to the comment's anchor."""
    author = make_user(name="Anna Autorin")
    me = make_user(name="Nora Nojs")
    p = make_proposal(db, author)
    c = make_comment(db, p, author, "Erste Meinung")
    page = new_page(java_script_enabled=False)
    log_in(page, me.email)
    page.goto(f"/proposals/{p.id}")
    page.locator("#f-body").fill("Ohne Skript")
    page.get_by_role("button", name="Kommentar veröffentlichen").click()
    expect(page).to_have_url(re.compile(rf"/proposals/{p.id}#comment-\d+$"))
    expect(page.locator("#comment-list")).to_contain_text("Ohne Skript")
    page.locator(f"#comment-article-{c.id}").get_by_role("link", name=re.compile("^Antworten")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Auf einen Kommentar antworten")
    page.locator(f"#f-body-r{c.id}").fill("Antwort ohne Skript")
    page.get_by_role("button", name="Antwort veröffentlichen").click()
    expect(page.locator(f"#replies-{c.id}")).to_contain_text("Antwort ohne Skript")


def test_notification_pages(page, db, make_user):
    """The list (unread marked, link to the comment) and the settings page pass axe; saving settings
    works; opening an entry goes to the comment and marks it read."""
    me = make_user(name="Fritz Folger")
    other = make_user(name="Olga Other")
    p = make_proposal(db, me, title="Ein Spielplatz für Barmen")
    follow(db, p, me)
    c = make_comment(db, p, other, "Gute Sache")
    with new_session(db.engine) as s:
        s.add(Notification(user_id=me.id, kind="comment", proposal_id=p.id, comment_id=c.id))
        s.commit()
    log_in(page, me.email)
    page.locator("header").get_by_role("link", name="Benachrichtigungen").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Benachrichtigungen")
    expect(page.locator(".lead")).to_have_text("Sie haben 1 ungelesene Benachrichtigung.")
    check_a11y(page, "notifications")

    page.get_by_role("link", name="Einstellungen für Benachrichtigungen").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Einstellungen für Benachrichtigungen")
    check_a11y(page, "notification settings")
    page.get_by_role("group", name="Neue Kommentare").get_by_label(
        "In die Zusammenfassung per E-Mail aufnehmen"
    ).check()
    page.get_by_role("button", name="Einstellungen speichern").click()
    expect(page.get_by_role("status").first).to_contain_text("wurden gespeichert")
    expect(
        page.get_by_role("group", name="Neue Kommentare").get_by_label(
            "In die Zusammenfassung per E-Mail aufnehmen"
        )
    ).to_be_checked()

    page.goto("/notifications")
    page.get_by_role("link", name="Neuer Kommentar von Olga Other zu „Ein Spielplatz für Barmen“").click()
    expect(page).to_have_url(re.compile(rf"/proposals/{p.id}#comment-{c.id}$"))
    page.goto("/notifications")
    expect(page.locator(".lead")).to_have_text("Sie haben keine ungelesenen Benachrichtigungen.")
    check_a11y(page, "notifications, all read")
