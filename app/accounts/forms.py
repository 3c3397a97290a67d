"""Account forms: every field validated on the server, messages shown next to the field."""

from __future__ import annotations

from typing import Any

from app import forms
from app.forms import FieldError, Form
from app.i18n import LOCALES
from app.i18n import gettext as _


class RegisterForm(Form):
    fields = ("email", "display_name", "password", "password2", "locale", "accept_rules")

    def clean_email(self, v: Any) -> str:
        return forms.email(v)

    def clean_display_name(self, v: Any) -> str:
        return forms.text(v, min_len=2, max_len=80)

    def clean_password(self, v: Any) -> str:
        return forms.password(v)

    def clean_password2(self, v: Any) -> str:
        return v if isinstance(v, str) else ""

    def clean_locale(self, v: Any) -> str:
        return forms.choice(v or "de", set(LOCALES))

    def clean_accept_rules(self, v: Any) -> bool:
        if v != "on":
            raise FieldError(_("Please accept the community rules and the privacy notice."))
        return True

    def clean(self) -> None:
        if self.cleaned.get("password") != self.cleaned.get("password2"):
            self.add_error("password2", _("The two passwords do not match."))


class LoginForm(Form):
    fields = ("email", "password", "next")

    def clean_email(self, v: Any) -> str:
        return forms.email(v)

    def clean_password(self, v: Any) -> str:
        if not isinstance(v, str) or not v:
            raise FieldError(_("This field is required."))
        if len(v) > forms.MAX_PASSWORD:
            raise FieldError(_("Please enter at most %(n)s characters.", n=forms.MAX_PASSWORD))
        return v


class EmailForm(Form):
    fields = ("email",)

    def clean_email(self, v: Any) -> str:
        return forms.email(v)


class NewPasswordForm(Form):
    fields = ("token", "password", "password2")

    def clean_password(self, v: Any) -> str:
        return forms.password(v)

    def clean(self) -> None:
        if self.cleaned.get("password") != self.cleaned.get("password2"):
            self.add_error("password2", _("The two passwords do not match."))


class ChangePasswordForm(Form):
    fields = ("current_password", "password", "password2")

    def clean_current_password(self, v: Any) -> str:
        if not isinstance(v, str) or not v:
            raise FieldError(_("This field is required."))
        return v

    def clean_password(self, v: Any) -> str:
        return forms.password(v)

    def clean(self) -> None:
        if self.cleaned.get("password") != self.cleaned.get("password2"):
            self.add_error("password2", _("The two passwords do not match."))


class ProfileForm(Form):
    fields = ("display_name", "district_id", "locale")

    def __init__(self, data=None, initial=None, *, districts: dict[str, str] | None = None):
        super().__init__(data, initial)
        self.districts = districts or {}

    def clean_display_name(self, v: Any) -> str:
        return forms.text(v, min_len=2, max_len=80)

    def clean_district_id(self, v: Any) -> int | None:
        choice = forms.choice(v, self.districts, required=False)
        return int(choice) if choice else None

    def clean_locale(self, v: Any) -> str:
        return forms.choice(v, set(LOCALES))


class DeleteAccountForm(Form):
    fields = ("password", "confirm")

    def clean_password(self, v: Any) -> str:
        if not isinstance(v, str) or not v:
            raise FieldError(_("This field is required."))
        return v

    def clean_confirm(self, v: Any) -> bool:
        if v != "on":
            raise FieldError(_("Please confirm that you want to delete your account."))
        return True


class ReauthForm(Form):
    """Re-authentication fields (app/accounts/reauth.py): the page shows only the one the account's method
    needs, so both are optional here and ``reauth.confirm`` asks for the right one. Subclasses add fields
    with ``fields = (*ReauthForm.fields, "…")``."""

    fields: tuple[str, ...] = ("password", "code")
    secret_fields = ("password", "code")

    def clean_password(self, v: Any) -> str:
        if not isinstance(v, str):
            return ""
        if len(v) > forms.MAX_PASSWORD:
            raise FieldError(_("Please enter at most %(n)s characters.", n=forms.MAX_PASSWORD))
        return v

    def clean_code(self, v: Any) -> str:
        return forms.text(v.strip() if isinstance(v, str) else v, required=False, max_len=12)


class ConfirmDeleteForm(ReauthForm):
    """Deleting the account: re-authentication (password, app code or e-mail confirmation) and the box."""

    fields = (*ReauthForm.fields, "confirm")
    clean_confirm = DeleteAccountForm.clean_confirm
