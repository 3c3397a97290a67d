"""The template environment and static files: Jinja2 with autoescaping, gettext, the formatting filters
and sanitised Markdown; static URLs versioned by content hash and served with long-lived cache headers.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import jinja2
from markupsafe import Markup
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from app import i18n
from app.sanitize import render_markdown
from app.settings import ROOT

TEMPLATES_DIR = ROOT / "templates"
STATIC_DIR = Path(__file__).resolve().parent / "static"


def _raw_gettext(message: str) -> str:
    return i18n._catalogue().gettext(message)


def _raw_ngettext(singular: str, plural: str, n: int) -> str:
    return i18n._catalogue().ngettext(singular, plural, n)


@functools.cache
def _static_digest(path: str) -> str:
    full = (STATIC_DIR / path).resolve()
    if STATIC_DIR not in full.parents or not full.is_file():
        raise ValueError(f"no static file {path!r}")
    return hashlib.sha256(full.read_bytes()).hexdigest()[:12]


def static_url(path: str) -> str:
    return f"/static/{path}?v={_static_digest(path)}"


class CachedStaticFiles(StaticFiles):
    """Static files with cache headers: versioned URLs (``?v=``) are immutable for a year."""

    def file_response(self, full_path, stat_result, scope, status_code=200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        versioned = b"v=" in scope.get("query_string", b"")
        response.headers["Cache-Control"] = (
            "public, max-age=31536000, immutable" if versioned else "public, max-age=3600"
        )
        return response


def markdown_filter(text: str) -> Markup:
    """Markdown rendered with raw HTML off and sanitised by nh3: the only ``Markup`` from user text."""
    return Markup(render_markdown(text))  # noqa: S704 nh3-sanitised output


def make_templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=jinja2.select_autoescape(("html", "xml"), default=True),
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(_raw_gettext, _raw_ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals.update(
        static_url=static_url,
        format_dt=i18n.format_dt,
        format_day=i18n.format_day,
        format_number=i18n.format_number,
        format_cents=i18n.format_cents,
        locale_names=i18n.LOCALE_NAMES,
    )
    env.filters.update(
        dt=i18n.format_dt,
        day=i18n.format_day,
        number=i18n.format_number,
        cents=i18n.format_cents,
        markdown=markdown_filter,
    )
    return Jinja2Templates(env=env)
