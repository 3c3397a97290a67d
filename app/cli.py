"""The ``mitmachen`` command: serve, migrate, demo, create-admin, and the feature packages' commands.

Errors go to stderr with exit code 2 (bad input) or 1 (operation failed)."""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from collections.abc import Sequence

from app.settings import Settings, SettingsError


def _settings() -> Settings:
    return Settings.from_env()


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = _settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    forwarded = [ip.strip() for ip in settings.trusted_proxies.split(",") if ip.strip()]
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        proxy_headers=bool(forwarded),
        forwarded_allow_ips=forwarded or None,
        server_header=False,
        log_level="info",
    )
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from app.migrations import upgrade

    settings = _settings()
    upgrade(settings.effective_database_url, args.revision)
    print(f"database migrated to {args.revision}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from app import demo
    from app.database import make_engine, new_session
    from app.main import demo_loaders

    settings = _settings()
    engine = make_engine(settings)
    with new_session(engine) as db:
        done = demo.load(db, settings)
        for loader in demo_loaders():
            done += loader(db, settings)
        db.commit()
    print(
        f"demo data: {len(done)} records added"
        + (f" ({', '.join(done[:8])}{' …' if len(done) > 8 else ''})" if done else " (already present)")
    )
    if not settings.is_production:
        print(
            f"demo accounts: {', '.join(e for e, _n, _r in demo.DEMO_USERS)}; password: {demo.DEMO_PASSWORD}"
        )
    return 0


def cmd_create_admin(args: argparse.Namespace) -> int:
    from app import forms
    from app.accounts.services import create_admin
    from app.database import make_engine, new_session

    try:
        email = forms.email(args.email)
    except forms.FieldError:
        print(f"error: not a valid e-mail address: {args.email!r}", file=sys.stderr)
        return 2
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != password:
            print("error: the passwords do not match", file=sys.stderr)
            return 2
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        forms.password(password)
    except forms.FieldError:
        print(
            f"error: the password must have {forms.MIN_PASSWORD} to {forms.MAX_PASSWORD} characters",
            file=sys.stderr,
        )
        return 2
    settings = _settings()
    with new_session(make_engine(settings)) as db:
        user = create_admin(db, email=email, password=password)
        db.commit()
        print(f"administrator {user.email} (id {user.id}) is ready")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from app.main import cli_plugins

    parser = argparse.ArgumentParser(prog="mitmachen", description="Mitmachen citizen-participation platform")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("serve", help="run the web app", description="Run the web app with uvicorn.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "migrate",
        help="apply database migrations (alembic upgrade)",
        description="Bring the database schema up to date with Alembic.",
    )
    p.add_argument("revision", nargs="?", default="heads", help="target revision (default: every head)")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser(
        "demo",
        help="load idempotent demo data",
        description="Load demo data: theme areas, districts, pages, demo accounts (not in production).",
    )
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "create-admin",
        help="create or promote an administrator",
        description="Create an administrator (or promote an existing account). The password is "
        "read from a prompt, or from the first line of stdin when it is not a terminal.",
    )
    p.add_argument("email", metavar="EMAIL")
    p.set_defaults(func=cmd_create_admin)

    for register in cli_plugins():
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    import importlib

    from app.main import models_modules

    for module in models_modules():  # every table known before any command touches the database
        importlib.import_module(module)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SettingsError as exc:
        print(f"error: configuration: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # an operation failed: say what, without a traceback
        from sqlalchemy.exc import OperationalError, ProgrammingError

        if isinstance(exc, OperationalError | ProgrammingError):
            print(f"error: database: {exc.orig}. Did you run 'mitmachen migrate'?", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
