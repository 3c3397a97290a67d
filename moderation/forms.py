"""Moderation forms: parsing and field errors; the rules themselves live in moderation/services.py."""

from __future__ import annotations

from typing import Any

from app.forms import FieldError, Form, choice, text
from app.i18n import gettext as _
from moderation.models import Category
from moderation.services import MAX_EXPLANATION, MAX_STATEMENT


def _optional_int(value: Any) -> int | None:
    if value in ("", None):
        return None
    if not isinstance(value, str) or not value.isdigit() or len(value) > 9:
        raise FieldError(_("Please enter a whole number."))
    return int(value)


class ReportForm(Form):
    fields = ("category", "explanation")

    def clean_category(self, value: Any) -> str:
        return choice(value, [c.value for c in Category])

    def clean_explanation(self, value: Any) -> str:
        return text(value, required=False, max_len=MAX_EXPLANATION)


class DecisionForm(Form):
    fields = ("action", "ground", "statement", "days", "duplicate_of", "title", "theme", "note")

    def clean_action(self, value: Any) -> str:
        return text(value, max_len=20)

    def clean_ground(self, value: Any) -> int | None:
        return _optional_int(value)

    def clean_statement(self, value: Any) -> str:
        return text(value, required=False, max_len=MAX_STATEMENT)

    def clean_days(self, value: Any) -> int | None:
        return _optional_int(value)

    def clean_duplicate_of(self, value: Any) -> int | None:
        return _optional_int(value)

    def clean_title(self, value: Any) -> str:
        return text(value, required=False, max_len=140)

    def clean_theme(self, value: Any) -> int | None:
        return _optional_int(value)

    def clean_note(self, value: Any) -> str:
        return text(value, required=False, max_len=500)


class AppealForm(Form):
    fields = ("text",)

    def clean_text(self, value: Any) -> str:
        return text(value, min_len=1, max_len=MAX_EXPLANATION)


class AppealDecisionForm(Form):
    fields = ("outcome", "statement")

    def clean_outcome(self, value: Any) -> str:
        return choice(value, ["reverse", "confirm"])

    def clean_statement(self, value: Any) -> str:
        return text(value, max_len=MAX_STATEMENT)


class SettingsForm(Form):
    fields = ("words",)

    def clean_words(self, value: Any) -> str:
        return text(value, required=False, max_len=20000)
