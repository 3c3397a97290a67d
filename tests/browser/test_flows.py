"""The foundation's page flows in a real Chromium: registration, login, language, logout, form errors,
password reset, administration, the htmx search with and without JavaScript, the real CSP, and the keyboard.
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import assert_no_console_errors, check_a11y, console_log
from tests.conftest import PASSWORD


def main_button(page, name: str):
    """A submit button inside <main> (the header has its own "Anmelden" link and language buttons)."""
    return page.locator("main").get_by_role("button", name=name, exact=True)


def log_in(page, email: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.locator("#f-email").fill(email)
    page.locator("#f-password").fill(password)
    main_button(page, "Anmelden").click()
    expect(page.locator("header .account-link")).to_be_visible()


def test_register_confirm_login_language_logout(page, mailbox):
    """A visitor registers, confirms the mailed link, logs in, switches to English and logs out;
    home, register, login, account and the English page pass axe."""
    email = "neu@example.org"
    page.goto("/")
    expect(page.locator("html")).to_have_attribute("lang", "de")
    check_a11y(page, "home")

    page.locator("header").get_by_role("link", name="Registrieren").click()
    expect(page).to_have_url(re.compile(r"/register$"))
    check_a11y(page, "register")
    page.locator("#f-email").fill(email)
    page.locator("#f-display_name").fill("Nora Neu")
    page.locator("#f-password").fill(PASSWORD)
    page.locator("#f-password2").fill(PASSWORD)
    page.locator("#f-accept_rules").check()
    main_button(page, "Konto anlegen").click()
    expect(page).to_have_url(re.compile(r"/register/sent$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Bitte sehen Sie in Ihr Postfach")

    page.goto(mailbox.link(email, "/register/confirm"))
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("status")).to_contain_text("Ihre E-Mail-Adresse ist bestätigt")
    check_a11y(page, "login")
    page.locator("#f-email").fill(email)
    page.locator("#f-password").fill(PASSWORD)
    main_button(page, "Anmelden").click()
    header = page.locator("header")
    expect(header.get_by_role("link", name="Nora Neu")).to_be_visible()
    expect(header.get_by_role("button", name="Abmelden")).to_be_visible()

    header.get_by_role("link", name="Nora Neu").click()
    expect(page).to_have_url(re.compile(r"/account$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Mein Konto")
    check_a11y(page, "account")

    header.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page).to_have_url(re.compile(r"/account$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("My account")
    expect(header.get_by_role("button", name="Log out")).to_be_visible()
    expect(header.get_by_role("button", name="English")).to_have_attribute("aria-pressed", "true")
    check_a11y(page, "account in English")

    header.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("status")).to_have_text("You are logged out.")
    expect(header.get_by_role("link", name="Log in", exact=True)).to_be_visible()
    expect(header.locator(".account-link")).to_have_count(0)


def test_register_form_errors_are_shown_next_to_the_fields(page):
    """An invalid e-mail and a short password come back with messages next to the fields, tied to the
    inputs by aria-describedby, and the page stays accessible."""
    page.goto("/register")
    page.locator("#f-email").fill("kein-at-zeichen")
    page.locator("#f-display_name").fill("Nora Neu")
    page.locator("#f-password").fill("kurz")
    page.locator("#f-password2").fill("kurz")
    page.locator("#f-accept_rules").check()
    # The server answers 400 with the form again; Chromium logs that as a failed resource.
    console_log(page).allow("status of 400")
    main_button(page, "Konto anlegen").click()

    expect(page.get_by_role("alert")).to_have_text("Bitte korrigieren Sie die markierten Felder.")
    for name in ("email", "password"):
        error = page.locator(f"#e-{name}")
        field = page.locator(f"#f-{name}")
        expect(error).to_be_visible()
        expect(error).not_to_be_empty()
        expect(field).to_have_attribute("aria-invalid", "true")
        expect(field).to_have_attribute("aria-describedby", re.compile(rf"\be-{name}\b"))
        expect(field).to_have_accessible_description(re.compile(re.escape(error.inner_text())))
        field.focus()
        expect(field).to_be_focused()
    # The entered values are kept, passwords are not echoed back.
    expect(page.locator("#f-email")).to_have_value("kein-at-zeichen")
    expect(page.locator("#f-display_name")).to_have_value("Nora Neu")
    expect(page.locator("#f-password")).to_have_value("")
    check_a11y(page, "register with errors")


def test_password_reset(page, mailbox, make_user):
    """Forgot password → mailed link → new password → the old one fails, the new one logs in."""
    user = make_user(name="Paula Passwort")
    page.goto("/login")
    page.locator("main").get_by_role("link", name="Passwort vergessen?").click()
    expect(page).to_have_url(re.compile(r"/password/forgot$"))
    check_a11y(page, "forgot password")
    page.locator("#f-email").fill(user.email)
    main_button(page, "Link senden").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Bitte sehen Sie in Ihr Postfach")

    page.goto(mailbox.link(user.email, "/password/reset"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Neues Passwort wählen")
    check_a11y(page, "reset password")
    new_password = "ein ganz neues Passwort"
    page.locator("#f-password").fill(new_password)
    page.locator("#f-password2").fill(new_password)
    main_button(page, "Passwort speichern").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("status")).to_contain_text("Ihr Passwort wurde geändert")

    console_log(page).allow("status of 400")
    page.locator("#f-email").fill(user.email)
    page.locator("#f-password").fill(PASSWORD)
    main_button(page, "Anmelden").click()
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.locator("header .account-link")).to_have_count(0)

    log_in(page, user.email, new_password)
    expect(page.locator("header .account-link")).to_have_text("Paula Passwort")


def test_admin_sets_a_role(page, make_user):
    """An admin opens the dashboard and the user list and makes a resident a moderator; axe on each."""
    admin = make_user("admin", name="Ada Admin")
    resident = make_user(name="Rita Resident")
    log_in(page, admin.email)

    page.locator("header").get_by_role("link", name="Verwaltung").click()
    expect(page).to_have_url(re.compile(r"/admin$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Verwaltung")
    check_a11y(page, "admin dashboard")

    page.locator("main").get_by_role("link", name="Seiten").click()
    expect(page).to_have_url(re.compile(r"/admin/pages$"))
    check_a11y(page, "admin pages")

    page.goto("/admin/users")
    expect(page.get_by_role("heading", level=1)).to_have_text("Personen und Rollen")
    check_a11y(page, "admin users")
    role = page.get_by_label("Rolle von Rita Resident")
    expect(role).to_have_value("resident")
    role.select_option("moderator")
    page.locator(f"form[action='/admin/users/{resident.id}/role']").get_by_role(
        "button", name="Rolle setzen"
    ).click()
    expect(page.get_by_role("status")).to_have_text("Rolle von Rita Resident auf Moderation gesetzt.")
    expect(page.get_by_label("Rolle von Rita Resident")).to_have_value("moderator")
    check_a11y(page, "admin users after setting a role")


def test_admin_user_search_with_htmx_under_the_real_csp(new_page, make_user):
    """Typing into the search field swaps only the table via htmx (no reload, URL pushed), with the
    app's real Content-Security-Policy in force."""
    admin = make_user("admin", name="Ada Admin")
    make_user(name="Rita Resident")
    make_user(name="Otto Other")
    page = new_page(bypass_csp=False)
    log_in(page, admin.email)
    page.goto("/admin/users")
    rows = page.locator("#user-rows tbody tr")
    expect(rows).to_have_count(3)
    page.evaluate("window.__noReload = 'still here'")

    def is_search(response) -> bool:
        return "/admin/users?" in response.url and response.request.headers.get("hx-request") == "true"

    with page.expect_response(is_search) as info:
        page.get_by_label("Nach Name oder E-Mail suchen").fill("Rita")
    assert info.value.ok
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Rita Resident")
    expect(page.locator("#user-rows")).to_contain_text("1 Person")
    expect(page.locator("h1")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"/admin/users\?q=Rita"))
    assert page.evaluate("window.__noReload") == "still here"

    with page.expect_response(is_search):
        page.get_by_label("Rolle", exact=True).select_option("admin")
    expect(rows).to_have_count(0)
    assert page.evaluate("window.__noReload") == "still here"
    assert_no_console_errors(page)


def test_admin_user_search_without_javascript(new_page, make_user):
    """With JavaScript off, the same search is a plain GET form submitted with "Suchen"."""
    admin = make_user("admin", name="Ada Admin")
    make_user(name="Rita Resident")
    make_user(name="Otto Other")
    page = new_page(java_script_enabled=False)
    log_in(page, admin.email)
    page.goto("/admin/users")
    rows = page.locator("#user-rows tbody tr")
    expect(rows).to_have_count(3)
    page.get_by_label("Nach Name oder E-Mail suchen").fill("Otto")
    main_button(page, "Suchen").click()
    expect(page).to_have_url(re.compile(r"/admin/users\?q=Otto"))
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Otto Other")
    expect(page.get_by_label("Nach Name oder E-Mail suchen")).to_have_value("Otto")


def test_theme_page(page):
    """A theme area opens from the home page and passes axe."""
    page.goto("/")
    link = page.locator("#themes .theme-card h3 a").first
    name = link.inner_text()
    link.click()
    expect(page).to_have_url(re.compile(r"/themes/[a-z0-9-]+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    check_a11y(page, "theme page")


def test_real_csp_lets_the_pages_and_htmx_load(new_page):
    """Without bypassing the CSP, home and register load without console errors or CSP violations,
    and htmx is running."""
    page = new_page(bypass_csp=False)
    for path in ("/", "/register"):
        response = page.goto(path)
        assert response is not None and response.ok
        csp = response.headers.get("content-security-policy", "")
        assert "script-src 'self' 'nonce-" in csp
        assert page.evaluate("typeof htmx") == "object"
        assert_no_console_errors(page)


def test_skip_link_is_the_first_tab_stop(page, tmp_path):
    """On the home page the first Tab focuses "Zum Inhalt springen", which moves focus to <main>.
    Also writes a screenshot of the home page for a person to look at."""
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    expect(page.locator("#themes .theme-card")).to_have_count(9)
    shot = tmp_path / "home.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 0

    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Zum Inhalt springen")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(page.locator("#main")).to_be_focused()
