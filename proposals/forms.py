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
