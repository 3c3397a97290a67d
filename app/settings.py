"""Typed settings read from environment variables (see .env.example and docs/settings.md).

Outside development the app refuses to start with a missing or default SECRET_KEY.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

DEFAULT_SECRET = "dev-insecure-change-me"  # noqa: S105 refused outside development
ENVIRONMENTS = ("development", "test", "production")
ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """A setting is missing or invalid."""


def _bool(value: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off", ""):
        return False
    raise SettingsError(f"not a boolean: {value!r}")


RATE_LIMIT_NAMES = ("login", "register", "mail", "post", "two_factor", "verification")  # RATE_LIMIT_<NAME>


@dataclass(frozen=True)
class Settings:
    """Every setting, its environment variable (upper-case name) and its default."""

    environment: str = "development"
    secret_key: str = DEFAULT_SECRET
    database_url: str = ""
    data_dir: str = str(ROOT / "var")
    base_url: str = "http://127.0.0.1:8000"
    city_name: str = "Wuppertal"
    platform_name: str = "Mitmachen"
    default_locale: str = "de"
    timezone: str = "Europe/Berlin"
    mail_backend: str = "log"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_tls: str = "none"
    smtp_user: str = ""
    smtp_password: str = ""
    mail_sender: str = "Mitmachen <noreply@localhost>"
    session_idle_minutes: int = 120
    session_absolute_hours: int = 24 * 7
    email_token_hours: int = 48
    reset_token_minutes: int = 60
    rate_limit_login: str = "10/900"
    rate_limit_register: str = "5/3600"
    rate_limit_mail: str = "5/3600"
    rate_limit_enabled: bool = True
    trusted_proxies: str = ""
    support_threshold: int = 300
    support_window_days: int = 365
    map_bbox: str = "51.16,7.00,51.33,7.32"
    upload_max_mb: int = 5
    comment_edit_minutes: int = 15
    rate_limit_post: str = "30/3600"
    rate_limit_two_factor: str = "5/900"
    rate_limit_verification: str = "10/3600"
    two_factor_required_roles: str = "moderator,staff,admin"
    audit_key_file: str = ""
    deleted_content: str = "anonymise"
    # OpenID Connect sign-in providers as a JSON list (docs/settings.md; parsed by app/accounts/oidc.py)
    oidc_providers: str = ""
    oidc_timeout_seconds: int = 10
    oidc_clock_skew_seconds: int = 60
    oidc_discovery_cache_seconds: int = 300
    page_cache_seconds: int = 3
    page_cache_max_mb: int = 32
    web_threads: int = 1
    # operations (docs/operations.md)
    log_format: str = "auto"
    log_level: str = "info"
    metrics_allow: str = "127.0.0.1,::1"
    metrics_token: str = ""
    redis_url: str = ""
    mail_outbox_interval: int = 10
    mail_max_attempts: int = 10
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def https(self) -> bool:
        return self.base_url.startswith("https://")

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{Path(self.data_dir) / 'mitmachen.sqlite3'}"

    @property
    def session_cookie(self) -> str:
        return "__Host-session" if self.https else "session"

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """The city's bounding box for map points: (south, west, north, east)."""
        south, west, north, east = (float(x) for x in self.map_bbox.split(","))
        return south, west, north, east

    @property
    def upload_dir(self) -> Path:
        return Path(self.data_dir) / "uploads"

    def rate(self, name: str) -> tuple[int, int]:
        """A rate limit as (count, seconds) from a "count/seconds" setting."""
        raw = getattr(self, f"rate_limit_{name}")
        count, _, seconds = raw.partition("/")
        return int(count), int(seconds)

    @property
    def two_factor_roles(self) -> frozenset[str]:
        """Roles that must use a second factor (TOTP) to sign in."""
        return frozenset(r.strip() for r in self.two_factor_required_roles.split(",") if r.strip())

    def validate(self) -> Settings:
        if self.environment not in ENVIRONMENTS:
            raise SettingsError(f"ENVIRONMENT must be one of {', '.join(ENVIRONMENTS)}")
        if self.environment == "production":
            if not self.secret_key or self.secret_key == DEFAULT_SECRET or len(self.secret_key) < 32:
                raise SettingsError(
                    "SECRET_KEY is missing, the default, or shorter than 32 characters; "
                    "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
                )
            if not self.https:
                raise SettingsError("BASE_URL must be https:// in production")
        if not self.two_factor_roles <= {"resident", "moderator", "staff", "admin"}:
            raise SettingsError("TWO_FACTOR_REQUIRED_ROLES must be a comma-separated list of roles")
        if self.deleted_content not in ("anonymise", "remove"):
            raise SettingsError("DELETED_CONTENT must be 'anonymise' or 'remove'")
        if self.mail_backend not in ("log", "smtp"):
            raise SettingsError("MAIL_BACKEND must be 'log' or 'smtp'")
        if self.smtp_tls not in ("none", "starttls", "ssl"):
            raise SettingsError("SMTP_TLS must be none, starttls or ssl")
        if self.default_locale not in ("de", "en"):
            raise SettingsError("DEFAULT_LOCALE must be de or en")
        try:
            south, west, north, east = self.bbox
        except ValueError as exc:
            raise SettingsError("MAP_BBOX must be 'south,west,north,east' in degrees") from exc
        if not (-90 <= south < north <= 90 and -180 <= west < east <= 180):
            raise SettingsError("MAP_BBOX must be 'south,west,north,east' in degrees")
        if self.support_threshold < 1 or self.support_window_days < 1 or self.upload_max_mb < 1:
            raise SettingsError("SUPPORT_THRESHOLD, SUPPORT_WINDOW_DAYS and UPLOAD_MAX_MB must be positive")
        if not 1 <= self.oidc_timeout_seconds <= 60:
            raise SettingsError("OIDC_TIMEOUT_SECONDS must be 1 to 60")
        if not 0 <= self.oidc_clock_skew_seconds <= 300:
            raise SettingsError("OIDC_CLOCK_SKEW_SECONDS must be 0 to 300")
        if not 0 <= self.oidc_discovery_cache_seconds <= 86400:
            raise SettingsError("OIDC_DISCOVERY_CACHE_SECONDS must be 0 to 86400")
        if self.oidc_providers.strip():
            from app.accounts.oidc import parse_providers  # pure parsing, no web stack

            parse_providers(self.oidc_providers, production=self.is_production)
        if not 0 <= self.page_cache_seconds <= 60:
            raise SettingsError("PAGE_CACHE_SECONDS must be 0 (off) to 60")
        if not 1 <= self.page_cache_max_mb <= 4096:
            raise SettingsError("PAGE_CACHE_MAX_MB must be 1 to 4096")
        if not 0 <= self.web_threads <= 64:
            raise SettingsError("WEB_THREADS must be 0 (a shared pool of 40) to 64")
        for name in RATE_LIMIT_NAMES:
            try:
                count, seconds = self.rate(name)
            except ValueError as exc:
                raise SettingsError(f"RATE_LIMIT_{name.upper()} must look like 10/900") from exc
            if count < 1 or seconds < 1:
                raise SettingsError(f"RATE_LIMIT_{name.upper()} must be positive")
        self._validate_operations()
        return self

    def _validate_operations(self) -> None:
        import ipaddress
        import re

        if self.log_format not in ("auto", "json", "text"):
            raise SettingsError("LOG_FORMAT must be auto, json or text")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise SettingsError("LOG_LEVEL must be debug, info, warning or error")
        for key, value in (("METRICS_ALLOW", self.metrics_allow), ("TRUSTED_PROXIES", self.trusted_proxies)):
            for item in (v.strip() for v in value.split(",")):
                if not item:
                    continue
                if key == "TRUSTED_PROXIES" and not re.match(r"^[0-9A-Fa-f:.]+(/\d+)?$", item):
                    continue  # a peer that is not an IP address (e.g. a unix socket's name)
                try:
                    ipaddress.ip_network(item, strict=False)
                except ValueError as exc:
                    raise SettingsError(f"{key}: {item!r} is not an address or network") from exc
        if self.metrics_token and len(self.metrics_token) < 16:
            raise SettingsError("METRICS_TOKEN must have at least 16 characters (or be empty)")
        if self.redis_url and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError("REDIS_URL must start with redis://, rediss:// or unix://")
        if not 0 <= self.mail_outbox_interval <= 3600:
            raise SettingsError("MAIL_OUTBOX_INTERVAL must be 0 (no loop in the app) to 3600 seconds")
        if not 1 <= self.mail_max_attempts <= 30:
            raise SettingsError("MAIL_MAX_ATTEMPTS must be 1 to 30")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in fields(cls):
            if f.name == "extra":
                continue
            key = f.name.upper()
            if key not in env:
                continue
            raw = env[key]
            try:
                if f.type in ("int", int):
                    values[f.name] = int(raw)
                elif f.type in ("bool", bool):
                    values[f.name] = _bool(raw)
                else:
                    values[f.name] = raw
            except ValueError as exc:
                raise SettingsError(f"{key}: {exc}") from exc
        values.update(overrides)
        return cls(**values).validate()  # type: ignore[arg-type]


def documented_settings() -> list[str]:
    """Names of the environment variables the app reads (kept honest by a docs test)."""
    return [f.name.upper() for f in fields(Settings) if f.name != "extra"]
