"""Small server-side form validation: positive checks, a message next to each field, nothing written
until the whole form is valid (ASVS V2.2.1)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from email_validator import EmailNotValidError, validate_email

from app.i18n import gettext as _


class FieldError(ValueError):
    pass


class Form:
    """Subclasses define ``fields`` (names) and ``clean_<name>(value) -> cleaned`` methods that raise
    FieldError with a translated message. ``clean()`` may add cross-field errors."""

    fields: tuple[str, ...] = ()

    def __init__(self, data: Mapping[str, Any] | None = None, initial: Mapping[str, Any] | None = None):
        self.data = {k: v for k, v in (data or {}).items() if k in self.fields}
        self.initial = dict(initial or {})
        self.errors: dict[str, str] = {}
        self.cleaned: dict[str, Any] = {}

    def value(self, name: str) -> Any:
        if name in self.data:
            value = self.data[name]
            return "" if name in self.secret_fields else value
        return self.initial.get(name, "")

    secret_fields: tuple[str, ...] = ("password", "password2", "current_password", "new_password")

    def is_valid(self) -> bool:
        for name in self.fields:
            raw = self.data.get(name, "")
            raw = raw.strip() if isinstance(raw, str) and name not in self.secret_fields else raw
            method = getattr(self, f"clean_{name}", None)
            try:
                self.cleaned[name] = method(raw) if method else raw
            except FieldError as exc:
                self.errors[name] = str(exc)
        if not self.errors:
            try:
                self.clean()
            except FieldError as exc:
                self.errors.setdefault("__all__", str(exc))
        return not self.errors

    def clean(self) -> None:
        return None

    def add_error(self, name: str, message: str) -> None:
        self.errors[name] = message


def text(value: Any, *, required: bool = True, min_len: int = 0, max_len: int = 200) -> str:
    if not isinstance(value, str):
        raise FieldError(_("Please enter text."))
    if "\x00" in value:
        raise FieldError(_("This field contains characters that are not allowed."))
    if not value:
        if required:
            raise FieldError(_("This field is required."))
        return ""
    if len(value) < min_len:
        raise FieldError(_("Please enter at least %(n)s characters.", n=min_len))
    if len(value) > max_len:
        raise FieldError(_("Please enter at most %(n)s characters.", n=max_len))
    return value


def email(value: Any) -> str:
    value = text(value, max_len=254)
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise FieldError(_("Please enter a valid e-mail address.")) from exc
    return result.normalized.lower()


MIN_PASSWORD = 10
MAX_PASSWORD = 256


def password(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise FieldError(_("This field is required."))
    if len(value) < MIN_PASSWORD:
        raise FieldError(_("Please choose a password of at least %(n)s characters.", n=MIN_PASSWORD))
    if len(value) > MAX_PASSWORD:
        raise FieldError(_("Please enter at most %(n)s characters.", n=MAX_PASSWORD))
    return value


def choice(value: Any, options: Mapping[str, Any] | set[str] | list[str], *, required: bool = True) -> str:
    if value in ("", None) and not required:
        return ""
    if not isinstance(value, str) or value not in options:
        raise FieldError(_("Please choose one of the options."))
    return value
