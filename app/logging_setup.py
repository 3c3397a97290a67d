"""Logging: one JSON object per line in production (LOG_FORMAT=json), readable text in development.

Every record carries the request id of the request it belongs to (a context variable set by
app.observability.RequestContextMiddleware, inherited by the handler's worker thread). JSON encoding
escapes line breaks and control characters in every value, so user input in a log message cannot forge a
second log line (ASVS V16.4.1). The access log (logger ``mitmachen.access``) adds method, path, status,
duration_ms, user_id and ip as fields.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
from typing import Any

from app.settings import Settings

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

# Fields that callers may attach with ``log.info(..., extra={...})`` and that appear in the JSON object.
EXTRA_FIELDS = ("event", "method", "path", "route", "status", "duration_ms", "user_id", "ip", "user_agent")


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", "request_id", …extra fields, "exc"}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", "") or request_id_var.get(),
        }
        for name in EXTRA_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return super().format(record)


def log_format(settings: Settings) -> str:
    if settings.log_format in ("json", "text"):
        return settings.log_format
    return "json" if settings.is_production else "text"


def dict_config(settings: Settings) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the whole process, uvicorn's loggers included (uvicorn applies
    it in every worker process). uvicorn's own access log is off: ours has the request id."""
    formatter = "json" if log_format(settings) == "json" else "text"
    level = settings.log_level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "app.logging_setup.RequestIdFilter"}},
        "formatters": {
            "json": {"()": "app.logging_setup.JsonFormatter"},
            "text": {"()": "app.logging_setup.TextFormatter"},
        },
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": formatter,
                "filters": ["request_id"],
            }
        },
        "root": {"handlers": ["default"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "alembic": {"handlers": [], "level": "WARNING", "propagate": True},  # /readyz reads the heads
        },
    }


def configure(settings: Settings) -> None:
    import logging.config

    logging.config.dictConfig(dict_config(settings))
