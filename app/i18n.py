"""German first, English second: Babel catalogues, the current locale, and locale-aware formatting.

Catalogues live in app/translations/<locale>/LC_MESSAGES/messages.po (committed); they are compiled
in memory when the app starts, so no .mo file needs to be built or committed.
"""

from __future__ import annotations

import datetime as dt
import gettext as _gettext
from contextvars import ContextVar
from decimal import Decimal
from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal
from babel.support import Translations

LOCALES = ("de", "en")
LOCALE_NAMES = {"de": "Deutsch", "en": "English"}
TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"
BERLIN = ZoneInfo("Europe/Berlin")

_current: ContextVar[str] = ContextVar("locale", default="de")
_catalogues: dict[str, _gettext.NullTranslations] = {}


def load_catalogues() -> None:
    """Compile every .po file in memory (called once at start)."""
    for locale in LOCALES:
        po = TRANSLATIONS_DIR / locale / "LC_MESSAGES" / "messages.po"
        if not po.exists():
            _catalogues[locale] = _gettext.NullTranslations()
            continue
        with po.open("rb") as fh:
            catalog = read_po(fh, locale=locale)
        buf = BytesIO()
        write_mo(buf, catalog, use_fuzzy=False)
        buf.seek(0)
        _catalogues[locale] = Translations(fp=buf)


def set_locale(locale: str) -> None:
    _current.set(locale if locale in LOCALES else "de")


def get_locale() -> str:
    return _current.get()


def _catalogue() -> _gettext.NullTranslations:
    if not _catalogues:
        load_catalogues()
    return _catalogues.get(_current.get()) or _gettext.NullTranslations()


def gettext(message: str, **variables: object) -> str:
    text = _catalogue().gettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, n: int, **variables: object) -> str:
    text = _catalogue().ngettext(singular, plural, n)
    variables.setdefault("num", n)
    return text % variables


_ = gettext


def lazy(message: str) -> str:
    """Marks a string for extraction; translate it at render time with gettext()."""
    return message


def format_dt(value: dt.datetime | None, fmt: str = "medium") -> str:
    if value is None:
        return ""
    return format_datetime(value.astimezone(BERLIN), format=fmt, tzinfo=BERLIN, locale=get_locale())


def format_day(value: dt.date | dt.datetime | None, fmt: str = "long") -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        value = value.astimezone(BERLIN).date()
    return format_date(value, format=fmt, locale=get_locale())


def format_number(value: int | float | Decimal) -> str:
    return format_decimal(value, locale=get_locale())


def format_cents(cents: int | None, currency: str = "EUR") -> str:
    if cents is None:
        return ""
    return format_currency(Decimal(cents) / 100, currency, locale=get_locale())
