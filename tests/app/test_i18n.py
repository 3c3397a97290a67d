"""German first, English second: complete catalogues, the language switch, locale formatting."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

from app import i18n
from app.models import User
from tests.conftest import query

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "app" / "translations"


def test_every_message_has_a_german_translation():
    """Every msgid of the template has a non-empty, non-fuzzy German translation, same placeholders."""
    import re

    with (TRANSLATIONS / "messages.pot").open("rb") as fh:
        pot = read_po(fh)
    with (TRANSLATIONS / "de" / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        de = read_po(fh)
    missing, bad_placeholders = [], []
    for msg in pot:
        if not msg.id:
            continue
        tr = de.get(msg.id)
        strings = (tr.string if isinstance(tr.string, tuple) else (tr.string,)) if tr else ("",)
        if tr is None or tr.fuzzy or not all(strings):
            missing.append(msg.id)
            continue
        source = msg.id[0] if isinstance(msg.id, tuple) else msg.id
        want = sorted(set(re.findall(r"%\(\w+\)s", source)))
        for s in strings:
            if sorted(set(re.findall(r"%\(\w+\)s", s))) != want and not isinstance(msg.id, tuple):
                bad_placeholders.append(msg.id)
    assert missing == [], f"untranslated: {missing}"
    assert bad_placeholders == []


def test_template_is_up_to_date(tmp_path):
    """The committed .pot contains every marked string of the code and templates (run `make i18n`)."""
    out = tmp_path / "messages.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "lazy",
            "-k",
            "gettext",
            "-k",
            "_",
            "-k",
            "ngettext:1,2",
            "--no-location",
            "--sort-output",
            "--omit-header",
            "-o",
            str(out),
            ".",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    with out.open("rb") as fh:
        fresh = {m.id for m in read_po(fh) if m.id}
    with (TRANSLATIONS / "messages.pot").open("rb") as fh:
        committed = {m.id for m in read_po(fh) if m.id}
    assert fresh - committed == set(), "new strings not in messages.pot: run `make i18n`"


def test_german_is_default_and_switch_to_english(client, db, make_user, login):
    """Visitors see German; the header switch stores English in a cookie (and the profile)."""
    home = client.get("/")
    assert '<html lang="de">' in home.text and "Anmelden" in home.text
    response = client.post_form("/language", {"locale": "en", "next": "/login"})
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert "lang=en" in response.headers["set-cookie"]
    english = client.get("/")
    assert '<html lang="en">' in english.text and "Log in" in english.text
    user = make_user(locale="de")
    login(user)
    assert '<html lang="de">' in client.get("/").text  # the profile's language wins after login
    client.post_form("/language", {"locale": "en", "next": "/"})
    assert query(db, User, User.id == user.id)[0].locale == "en"
    bad = client.post_form("/language", {"locale": "fr", "next": "/"})
    assert bad.status_code == 400


def test_locale_formatting():
    """Dates, numbers and money follow the locale; times are shown in Europe/Berlin."""
    moment = dt.datetime(2026, 7, 1, 10, 30, tzinfo=dt.UTC)
    i18n.set_locale("de")
    assert i18n.format_number(1234567.5) == "1.234.567,5"
    assert i18n.format_cents(123456) == "1.234,56\xa0€"
    assert "12:30" in i18n.format_dt(moment)  # CEST = UTC+2
    assert i18n.format_day(moment) == "1. Juli 2026"
    i18n.set_locale("en")
    assert i18n.format_number(1234567.5) == "1,234,567.5"
    assert i18n.format_cents(123456) == "€1,234.56"
    assert i18n.format_day(moment) == "July 1, 2026"
    i18n.set_locale("de")


def test_mail_in_recipients_language(client, mailbox, make_user):
    """Mails go out in the recipient's language, whatever the page's language."""
    user = make_user(locale="en")
    client.post_form("/password/forgot", {"email": user.email})
    [mail] = mailbox.to(user.email)
    assert mail["Subject"].startswith("Reset your")
