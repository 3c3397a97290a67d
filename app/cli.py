"""The ``mitmachen`` command: serve, migrate, demo, create-admin, and the feature packages' commands.

Errors go to stderr with exit code 2 (bad input) or 1 (operation failed)."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence

from app.settings import Settings, SettingsError


def _settings() -> Settings:
    return Settings.from_env()


def _metrics_dir(workers: int) -> str | None:
    """Several workers share their metrics through files in PROMETHEUS_MULTIPROC_DIR: use the operator's
    directory or a fresh temporary one, emptied before the workers start (stale files would add up)."""
    import os
    import tempfile
    from pathlib import Path

    if workers < 2:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        return None
    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        return None
    path = Path(tempfile.mkdtemp(prefix="mitmachen-metrics-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)  # inherited by the workers
    return str(path)


def cmd_serve(args: argparse.Namespace) -> int:
    import shutil

    import uvicorn

    from app.logging_setup import dict_config

    settings = _settings()
    if args.workers < 1 or args.workers > 64:
        print("error: --workers must be 1 to 64", file=sys.stderr)
        return 2
    temporary = _metrics_dir(args.workers)
    try:
        # Forwarded headers are handled by the app (app/observability.py, TRUSTED_PROXIES), not uvicorn.
        uvicorn.run(
            "app.main:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            proxy_headers=False,
            server_header=False,
            date_header=True,
            log_config=dict_config(settings),
            access_log=False,
            timeout_graceful_shutdown=30,
        )
    finally:
        if temporary:
            shutil.rmtree(temporary, ignore_errors=True)
    return 0


def cmd_mail_worker(args: argparse.Namespace) -> int:
    import signal

    from app import outbox
    from app.database import make_engine
    from app.logging_setup import configure

    settings = _settings()
    configure(settings)
    engine = make_engine(settings)
    if args.once:
        report = outbox.deliver_due(engine, settings, limit=10**6)
        print(f"mail: {report.sent} sent, {len(report.retrying)} to retry, {len(report.failed)} failed")
        return 1 if report.problems else 0
    interval = args.interval if args.interval is not None else (settings.mail_outbox_interval or 10)
    worker = outbox.OutboxWorker(engine, settings, interval=interval)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop_event.set() or worker.wake_event.set())
    worker.start()
    try:
        while worker.thread.is_alive():
            worker.thread.join(1)
    finally:
        worker.stop()
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

    p = sub.add_parser(
        "serve",
        help="run the web app",
        description="Run the web app with uvicorn; several --workers share metrics, the database and Redis.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "mail-worker",
        help="deliver queued mail (outbox) in a process of its own",
        description="Deliver the mail queued in the outbox, with retries and backoff, until stopped "
        "(SIGTERM). Each app worker does this too unless MAIL_OUTBOX_INTERVAL is 0.",
    )
    p.add_argument("--once", action="store_true", help="deliver what is due now, then exit (1 if any failed)")
    p.add_argument("--interval", type=int, default=None, help="seconds between passes (MAIL_OUTBOX_INTERVAL)")
    p.set_defaults(func=cmd_mail_worker)

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

    from app import backup

    backup.register(sub)  # mitmachen backup / restore
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
