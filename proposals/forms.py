"""Forms for theme areas and districts."""

from __future__ import annotations

import re
from typing import Any

from app import forms
from app.forms import FieldError, Form
from app.i18n import gettext as _

SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def _slug(v: Any) -> str:
    v = forms.text(v, min_len=2, max_len=64)
    if not SLUG.match(v):
        raise FieldError(_("Use lower-case letters, digits and hyphens only."))
    return v


def _position(v: Any) -> int:
    try:
        n = int(v or 0)
    except (TypeError, ValueError) as exc:
        raise FieldError(_("Please enter a whole number.")) from exc
    if not 0 <= n <= 10000:
        raise FieldError(_("Please enter a number between 0 and 10000."))
    return n


def _checkbox(v: Any) -> bool:
    if v not in ("", "on", None):
        raise FieldError(_("Please choose one of the options."))
    return v == "on"


class ThemeForm(Form):
    fields = ("slug", "name_de", "name_en", "description_de", "description_en", "position", "is_active")
    clean_slug = staticmethod(_slug)
    clean_position = staticmethod(_position)
    clean_is_active = staticmethod(_checkbox)

    def clean_name_de(self, v: Any) -> str:
        return forms.text(v, min_len=2, max_len=100)

    def clean_name_en(self, v: Any) -> str:
        return forms.text(v, min_len=2, max_len=100)

    def clean_description_de(self, v: Any) -> str:
        return forms.text(v, required=False, max_len=2000)

    def clean_description_en(self, v: Any) -> str:
        return forms.text(v, required=False, max_len=2000)


class DistrictForm(Form):
    fields = ("slug", "name", "position", "is_active")
    clean_slug = staticmethod(_slug)
    clean_position = staticmethod(_position)
    clean_is_active = staticmethod(_checkbox)

    def clean_name(self, v: Any) -> str:
        return forms.text(v, min_len=2, max_len=100)


# --- proposals --------------------------------------------------------------------------------------------

TITLE_MIN, TITLE_MAX = 10, 140
SUMMARY_MAX = 500
BODY_MAX = 20_000
ADDRESS_MAX = 200
REASON_MAX = 2000
MAX_COST_CENTS = 100_000_000_000  # one billion euros: anything above is a typing error
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_OR_NEWLINE = re.compile(r"[\x00-\x1f\x7f]")
_COST_THOUSANDS_DOT = re.compile(r"^[0-9]{1,3}(?:\.[0-9]{3})+(?:,[0-9]{1,2})?$")
_COST_THOUSANDS_COMMA = re.compile(r"^[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]{1,2})?$")
_COST_PLAIN = re.compile(r"^[0-9]+(?:[.,][0-9]{1,2})?$")
_COORDINATE = re.compile(r"^-?[0-9]{1,3}(?:[.,][0-9]{1,12})?$")


def _clean_text(value: Any, *, single_line: bool, **limits: Any) -> str:
    value = forms.text(value, **limits)
    if (_CONTROL_OR_NEWLINE if single_line else _CONTROL).search(value):
        raise FieldError(_("This field contains characters that are not allowed."))
    return value


def parse_cost(value: Any) -> int | None:
    """Euros as typed by a person → integer cents. Accepts "1.234,56", "1234.56", "1,234.56", "1234",
    "1.234" (German thousands) and an optional "€"/"EUR"; refuses negatives, junk and absurd amounts."""
    if not isinstance(value, str):
        raise FieldError(_("Please enter an amount in euros, for example 1.250,50."))
    raw = re.sub(r"\s+|€|(?i:eur)", "", value)
    if not raw:
        return None
    if raw.startswith("-"):
        raise FieldError(_("The amount cannot be negative."))
    if _COST_THOUSANDS_DOT.match(raw):
        euros, _sep, cents = raw.replace(".", "").partition(",")
    elif _COST_THOUSANDS_COMMA.match(raw):
        euros, _sep, cents = raw.replace(",", "").partition(".")
    elif _COST_PLAIN.match(raw):
        euros, _sep, cents = raw.replace(",", ".").partition(".")
    else:
        raise FieldError(_("Please enter an amount in euros, for example 1.250,50."))
    if len(euros) > 15:
        raise FieldError(_("Please enter a realistic amount (at most one billion euros)."))
    total = int(euros) * 100 + int((cents or "0").ljust(2, "0"))
    if total > MAX_COST_CENTS:
        raise FieldError(_("Please enter a realistic amount (at most one billion euros)."))
    return total


def format_cost_input(cents: int | None, locale: str) -> str:
    if cents is None:
        return ""
    euros, rest = divmod(cents, 100)
    if not rest:
        return str(euros)
    return f"{euros}{',' if locale == 'de' else '.'}{rest:02d}"


def _coordinate(value: Any) -> float | None:
    if not isinstance(value, str):
        raise FieldError(_("Please enter a number such as 51.2562."))
    if not value:
        return None
    if not _COORDINATE.match(value):
        raise FieldError(_("Please enter a number such as 51.2562."))
    return float(value.replace(",", "."))


class ProposalForm(Form):
    """Title, summary, Markdown body, theme area, optional district, place, map point and cost.

    ``themes`` and ``districts`` are the active choices as (id, label); ``bbox`` is the city's
    (south, west, north, east) from settings."""

    fields = ("title", "summary", "body", "theme", "district", "address", "lat", "lon", "cost")

    def __init__(
        self,
        data=None,
        initial=None,
        *,
        themes: list[tuple[int, str]],
        districts: list[tuple[int, str]],
        bbox: tuple[float, float, float, float],
    ):
        super().__init__(data, initial)
        self.theme_options = themes
        self.district_options = districts
        self.bbox = bbox

    def clean_title(self, v: Any) -> str:
        return _clean_text(v, single_line=True, min_len=TITLE_MIN, max_len=TITLE_MAX)

    def clean_summary(self, v: Any) -> str:
        return _clean_text(v, single_line=False, max_len=SUMMARY_MAX)

    def clean_body(self, v: Any) -> str:
        return _clean_text(v, single_line=False, max_len=BODY_MAX)

    def clean_theme(self, v: Any) -> int:
        return int(forms.choice(v, {str(i) for i, _label in self.theme_options}))

    def clean_district(self, v: Any) -> int | None:
        value = forms.choice(v, {str(i) for i, _label in self.district_options}, required=False)
        return int(value) if value else None

    def clean_address(self, v: Any) -> str:
        return _clean_text(v, single_line=True, required=False, max_len=ADDRESS_MAX)

    clean_lat = staticmethod(_coordinate)
    clean_lon = staticmethod(_coordinate)
    clean_cost = staticmethod(parse_cost)

    def is_valid(self) -> bool:
        valid = super().is_valid()
        lat, lon = self.cleaned.get("lat"), self.cleaned.get("lon")
        if "lat" in self.errors or "lon" in self.errors:
            return False
        if (lat is None) != (lon is None):
            missing = "lon" if lon is None else "lat"
            self.add_error(missing, _("Please enter both latitude and longitude, or neither."))
            return False
        if lat is not None and lon is not None:
            south, west, north, east = self.bbox
            if not south <= lat <= north:
                self.add_error(
                    "lat", _("This point is outside the city (%(lo)s to %(hi)s).", lo=south, hi=north)
                )
            if not west <= lon <= east:
                self.add_error(
                    "lon", _("This point is outside the city (%(lo)s to %(hi)s).", lo=west, hi=east)
                )
        return valid and not self.errors


class StatusForm(Form):
    """A staff decision (or the author's withdrawal): the next status and the public reason."""

    fields = ("to", "reason")

    def __init__(self, data=None, initial=None, *, options: list[str], reason_required_for: tuple = ()):
        super().__init__(data, initial)
        self.options = options
        self.reason_required_for = reason_required_for

    def clean_to(self, v: Any) -> str:
        return forms.choice(v, self.options)

    def clean_reason(self, v: Any) -> str:
        return _clean_text(v, single_line=False, required=False, max_len=REASON_MAX)

    def clean(self) -> None:
        if self.cleaned.get("to") in self.reason_required_for and not self.cleaned.get("reason"):
            self.add_error("reason", _("Please give a public reason for this decision."))
