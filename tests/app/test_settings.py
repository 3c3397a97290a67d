"""Settings from the environment; refusing unsafe production configuration."""

from __future__ import annotations

import pytest

from app.main import create_app
from app.settings import DEFAULT_SECRET, Settings, SettingsError


def test_defaults_are_development_sqlite():
    """Without DATABASE_URL the app uses a SQLite file; development may use the default secret."""
    s = Settings.from_env({})
    assert s.environment == "development" and s.effective_database_url.startswith("sqlite:///")
    assert s.secret_key == DEFAULT_SECRET


@pytest.mark.parametrize("secret", [None, "", DEFAULT_SECRET, "too-short"])
def test_production_refuses_default_or_missing_secret(secret):
    """Outside development the app refuses to start with a default, missing or weak SECRET_KEY."""
    env = {"ENVIRONMENT": "production", "BASE_URL": "https://mitmachen.example"}
    if secret is not None:
        env["SECRET_KEY"] = secret
    with pytest.raises(SettingsError, match="SECRET_KEY"):
        Settings.from_env(env)
    with pytest.raises(SettingsError):
        create_app(Settings(environment="production", secret_key=secret or ""))


def test_production_requires_https_and_accepts_real_secret():
    """Production needs https; with a strong secret it validates."""
    with pytest.raises(SettingsError, match="https"):
        Settings.from_env({"ENVIRONMENT": "production", "SECRET_KEY": "s" * 40})
    s = Settings.from_env(
        {"ENVIRONMENT": "production", "SECRET_KEY": "s" * 40, "BASE_URL": "https://x.example"}
    )
    assert s.https and s.session_cookie == "__Host-session"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("ENVIRONMENT", "staging"),
        ("SMTP_PORT", "abc"),
        ("MAIL_BACKEND", "pigeon"),
        ("SMTP_TLS", "maybe"),
        ("RATE_LIMIT_LOGIN", "ten"),
        ("RATE_LIMIT_ENABLED", "perhaps"),
        ("DEFAULT_LOCALE", "fr"),
        ("WEB_THREADS", "-1"),
        ("WEB_THREADS", "65"),
    ],
)
def test_invalid_values_are_named(key, value):
    """An invalid value fails with a message naming the variable."""
    with pytest.raises(SettingsError) as exc:
        Settings.from_env({key: value})
    assert key.split("_")[0] in str(exc.value).upper()
