"""The composition root: builds the application from the packages' routes.

This is the only module of app/ that imports the feature packages (proposals, voting, moderation).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from app.i18n import lazy

if TYPE_CHECKING:  # the web stack is imported by create_app(), so CLI commands start fast
    from sqlalchemy import Engine
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse

    from app.settings import Settings

log = logging.getLogger("mitmachen")

# Main navigation and admin sections: (label msgid, path, permission or None).
NAV_ITEMS = [
    (lazy("Proposals"), "/proposals", None),
    (lazy("Participatory budgets"), "/processes", None),
    (lazy("Theme areas"), "/#themes", None),
    (lazy("Moderation"), "/moderation", "moderation.queue"),
]
ADMIN_SECTIONS = [
    (lazy("Council staff: processes, results, exports, statistics"), "/staff", "staff.processes"),
    (lazy("Users and roles"), "/admin/users", "admin.users"),
    (lazy("Theme areas and districts"), "/admin/config", "admin.config"),
    (lazy("Pages"), "/admin/pages", "admin.pages"),
    (lazy("Moderation grounds and word list"), "/admin/moderation", "moderation.grounds"),
]


MODEL_MODULES = ["app.models", "proposals.models", "voting.models", "moderation.models"]


def models_modules() -> list[str]:
    """Every module that defines tables (Alembic's env.py imports these); modules not written yet are skipped."""
    import importlib.util

    return [name for name in MODEL_MODULES if importlib.util.find_spec(name) is not None]


# Feature packages' command-line modules: each has register(subparsers).
CLI_MODULES = ["voting.cli", "voting.voting_cli", "voting.audit_cli", "voting.export_cli", "proposals.cli"]


def cli_plugins() -> list[Callable]:
    """Feature packages' CLI registrations: each takes argparse subparsers."""
    import importlib

    return [importlib.import_module(name).register for name in CLI_MODULES]


def demo_loaders() -> list[Callable]:
    """Feature packages' demo data loaders: each takes (db, settings) and is idempotent."""
    from moderation.services import ensure_default_grounds
    from proposals.demo import load as proposals_demo
    from voting.demo import load as voting_demo

    def moderation_grounds(db, settings) -> list[str]:
        ensure_default_grounds(db, settings)
        return []

    return [moderation_grounds, proposals_demo, voting_demo]


async def healthz(request: Request) -> PlainTextResponse:
    from starlette.responses import PlainTextResponse

    return PlainTextResponse("ok")


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> Starlette:
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.middleware.sessions import SessionMiddleware
    from starlette.routing import Mount, Route

    from app import admin, i18n
    from app.accounts import routes as account_routes
    from app.database import make_engine
    from app.security import CSRFMiddleware, SecurityHeadersMiddleware
    from app.settings import Settings
    from app.web import STATIC_DIR, CachedStaticFiles, csrf_failure_page, make_templates, render_error
    from moderation import routes as moderation_routes
    from moderation import visibility as moderation_visibility
    from proposals import api as proposal_api
    from proposals import api_schema, comment_routes
    from proposals import routes as proposal_routes
    from proposals import services as proposal_services
    from voting import admin_routes as staff_routes
    from voting import audit_api_schema, audit_routes, keys, platform_log
    from voting import routes as voting_routes

    settings = (settings or Settings.from_env()).validate()
    engine = engine or make_engine(settings)
    i18n.load_catalogues()
    keys.configure(settings)
    platform_log.install(settings)
    moderation_visibility.install()
    api_schema.extend(audit_api_schema.PATHS, audit_api_schema.SCHEMAS)

    routes = [
        Route("/healthz", healthz),
        Mount("/static", CachedStaticFiles(directory=STATIC_DIR), name="static"),
        *account_routes.routes,
        *admin.routes,
        *proposal_routes.routes,
        *comment_routes.routes,
        *proposal_api.routes,
        *voting_routes.routes,
        *audit_routes.routes,
        *moderation_routes.routes,
        *staff_routes.routes,
    ]
    middleware = [
        Middleware(SecurityHeadersMiddleware, https=settings.https),
        Middleware(
            SessionMiddleware,
            secret_key=settings.secret_key,
            session_cookie=settings.session_cookie,
            max_age=settings.session_absolute_hours * 3600,
            same_site="lax",
            https_only=settings.https,
        ),
        Middleware(CSRFMiddleware),
    ]
    app = Starlette(
        debug=False,
        routes=routes,
        middleware=middleware,
        exception_handlers={HTTPException: render_error, Exception: render_error},
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.templates = make_templates()
    app.state.nav_items = NAV_ITEMS
    app.state.admin_sections = ADMIN_SECTIONS
    app.state.csrf_failure = csrf_failure_page
    app.state.district_choices = proposal_services.district_choices
    return app
