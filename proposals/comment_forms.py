"""Forms for comments, votes and notification settings (server-side validation, ASVS V2.2.1)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.forms import FieldError, Form, choice, text
from app.i18n import gettext as _
from proposals.comments import MAX_BODY, MIN_BODY


class CommentForm(Form):
    """A comment or reply: Markdown body; ``parent_id`` (optional) is the comment answered."""

    fields = ("body", "parent_id")

    def clean_body(self, value: Any) -> str:
        if isinstance(value, str) and not value.strip():
            raise FieldError(_("Please write a comment."))
        return text(value, min_len=MIN_BODY, max_len=MAX_BODY)

    def clean_parent_id(self, value: Any) -> int | None:
        if value in ("", None):
            return None
        if not isinstance(value, str) or not value.isascii() or not value.isdigit() or len(value) > 12:
            raise FieldError(_("Invalid request."))
        return int(value)


class VoteForm(Form):
    """An up (+1) or down (-1) vote; nothing else is accepted."""

    fields = ("value",)

    def clean_value(self, value: Any) -> int:
        return int(choice(value, {"1", "-1"}))


class NotificationSettingsForm(Form):
    """Two checkboxes per kind: ``in_app_<kind>`` and ``email_<kind>``."""

    def __init__(self, kinds: tuple[str, ...], data: Mapping[str, Any] | None = None, initial=None):
        self.kinds = kinds
        self.fields = tuple(f"{channel}_{kind}" for kind in kinds for channel in ("in_app", "email"))
        super().__init__(data, initial)

    def is_valid(self) -> bool:
        for name in self.fields:
            raw = self.data.get(name, "")
            if raw not in ("", "on"):
                self.errors[name] = _("Please choose one of the options.")
            self.cleaned[name] = raw == "on"
        return not self.errors

    def choices(self) -> dict[str, tuple[bool, bool]]:
        return {k: (self.cleaned[f"in_app_{k}"], self.cleaned[f"email_{k}"]) for k in self.kinds}
