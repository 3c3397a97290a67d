"""The composition root: builds the application from the packages' routes.

This is the only module of app/ that imports the feature packages (proposals, voting, moderation).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from app.i18n import lazy

if TYPE_CHECKING:  # the web stack is imported by create_app(), so CLI commands start fast
    from sqlalchemy import Engine
    from starlette.applications import Starlette

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
    (
        lazy("Resident verification: registers, letter codes, in person"),
        "/staff/verification",
        "staff.verification",
    ),
    (lazy("Users and roles"), "/admin/users", "admin.users"),
    (lazy("Theme areas and districts"), "/admin/config", "admin.config"),
    (lazy("Pages"), "/admin/pages", "admin.pages"),
    (lazy("Moderation grounds and word list"), "/admin/moderation", "moderation.grounds"),
    (lazy("Mail settings and outgoing mail"), "/admin/mail", "admin.mail"),
    (lazy("Record of processing activities"), "/admin/processing", "gdpr.records"),
]


MODEL_MODULES = [
    "app.models",
    "app.accounts.twofactor_models",
    "app.accounts.oidc_models",
    "app.ops_models",
    "app.accounts.verification",
    "proposals.models",
    "voting.models",
    "voting.verification_models",
    "moderation.models",
]


def models_modules() -> list[str]:
    """Every module that defines tables (Alembic's env.py imports these); modules not written yet are skipped."""
    import importlib.util

    return [name for name in MODEL_MODULES if importlib.util.find_spec(name) is not None]


# Feature packages' command-line modules: each has register(subparsers).
CLI_MODULES = [
    "voting.cli",
    "voting.voting_cli",
    "voting.audit_cli",
    "voting.export_cli",
    "proposals.cli",
    "app.accounts.twofactor_cli",
]


def cli_plugins() -> list[Callable]:
    """Feature packages' CLI registrations: each takes argparse subparsers."""
    import importlib

    return [importlib.import_module(name).register for name in CLI_MODULES]


# Feature packages' data-subject modules (app/gdpr.py): export(db, settings, user) and erase(db, settings,
# user, mode), optional KEEP_ON_ERASE table names.
GDPR_MODULES = ["proposals.gdpr", "voting.gdpr"]


def gdpr_modules() -> list[str]:
    return list(GDPR_MODULES)


def demo_loaders() -> list[Callable]:
    """Feature packages' demo data loaders: each takes (db, settings) and is idempotent."""
    from moderation.services import ensure_default_grounds
    from proposals.demo import load as proposals_demo
    from voting.demo import load as voting_demo

    def moderation_grounds(db, settings) -> list[str]:
        ensure_default_grounds(db, settings)
        return []

    return [moderation_grounds, proposals_demo, voting_demo]


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> Starlette:
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.middleware.sessions import SessionMiddleware
    from starlette.routing import Mount, Route

    from app import admin, gdpr_routes, health, i18n, mail_settings, metrics, outbox, ratelimit
    from app.accounts import oidc_routes, reauth_routes, twofactor_routes
    from app.accounts import routes as account_routes
    from app.database import make_engine
    from app.observability import RequestContextMiddleware, unless_answered
    from app.pagecache import PageCacheMiddleware
    from app.routing import IndexedRouter
    from app.security import CSRFMiddleware, SecurityHeadersMiddleware, csrf_token
    from app.settings import Settings
    from app.web import STATIC_DIR, CachedStaticFiles, csrf_failure_page, make_templates, render_error
    from moderation import routes as moderation_routes
    from moderation import visibility as moderation_visibility
    from proposals import api as proposal_api
    from proposals import api_schema, comment_routes
    from proposals import routes as proposal_routes
    from proposals import services as proposal_services
    from voting import admin_routes as staff_routes
    from voting import audit_api_schema, audit_routes, keys, platform_log, verification_routes
    from voting import routes as voting_routes

    settings = (settings or Settings.from_env()).validate()
    engine = engine or make_engine(settings)
    i18n.load_catalogues()
    keys.configure(settings)
    platform_log.install(settings)
    moderation_visibility.install()
    api_schema.extend(audit_api_schema.PATHS, audit_api_schema.SCHEMAS)
    ratelimit.configure(settings.redis_url)

    routes = [
        Route("/healthz", health.healthz),
        Route("/readyz", health.readyz),
        Route("/metrics", metrics.metrics_endpoint),
        *mail_settings.routes,
        Mount("/static", CachedStaticFiles(directory=STATIC_DIR), name="static"),
        *account_routes.routes,
        *gdpr_routes.routes,
        *reauth_routes.routes,
        *oidc_routes.routes,
        *twofactor_routes.routes,
        *admin.routes,
        *proposal_routes.routes,
        *comment_routes.routes,
        *proposal_api.routes,
        *voting_routes.routes,
        *audit_routes.routes,
        *moderation_routes.routes,
        *staff_routes.routes,
        *verification_routes.routes,
    ]
    middleware = [
        Middleware(
            RequestContextMiddleware, trusted_proxies=settings.trusted_proxies, error_handler=render_error
        ),
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
        Middleware(
            PageCacheMiddleware,
            seconds=settings.page_cache_seconds,
            max_mb=settings.page_cache_max_mb,
            default_locale=settings.default_locale,
            locales=i18n.LOCALES,
            csrf_token=csrf_token,
        ),
    ]
    app = Starlette(
        debug=False,
        routes=routes,
        middleware=middleware,
        exception_handlers={HTTPException: render_error, Exception: unless_answered(render_error)},
        lifespan=lambda app: outbox.lifespan_worker(app.state.engine, app.state.settings),
    )
    IndexedRouter.adopt(app.router)  # ~200 routes: match only those of the path's first segment
    app.state.settings = settings
    app.state.engine = engine
    app.state.templates = make_templates()
    app.state.nav_items = NAV_ITEMS
    app.state.admin_sections = ADMIN_SECTIONS
    app.state.csrf_failure = csrf_failure_page
    app.state.district_choices = proposal_services.district_choices
    oidc_routes.install(app)
    # Everything built so far (modules, compiled templates, catalogues) lives as long as the worker: move it
    # out of the collector's generations, so full collections scan only request garbage and stay short
    # (without this, gen-2 pauses of ~100 ms made the moderation queue's p99 on SQLite). Tests build an app
    # per test, where the extra full collection would only cost time.
    if settings.environment != "test":
        gc.collect()
        gc.freeze()
    return app
