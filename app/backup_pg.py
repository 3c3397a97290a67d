"""PostgreSQL for backups (app/backup.py): the client programs (``pg_dump``, ``pg_restore``) at least as new
as the server, the connection without the password on a command line, the dump and the restore in one
transaction.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from pathlib import Path

from sqlalchemy import create_engine, make_url, text
from sqlalchemy.engine import URL

from app.backup_format import BackupError, refuse_non_empty, revisions_url


def libpq_target(url: str) -> tuple[str, dict[str, str]]:
    """A SQLAlchemy URL as a libpq connection URI without the password, which goes to PGPASSWORD instead
    (never on a command line, where other local users could read it)."""
    u: URL = make_url(url)
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = u.password
    clean = URL.create(
        "postgresql", username=u.username, host=u.host, port=u.port, database=u.database, query=u.query
    )
    return clean.render_as_string(hide_password=False), env


def _major(version_text: str) -> int | None:
    match = re.search(r"(\d+)(?:\.\d+)?", version_text)
    return int(match.group(1)) if match else None


def find_pg_tool(name: str, server_major: int | None = None) -> str:
    """The newest ``name`` (pg_dump, pg_restore) on PATH or in /usr/lib/postgresql/*/bin whose major version
    is at least the server's (pg_dump refuses to dump a newer server)."""
    candidates: list[str] = []
    on_path = shutil.which(name)
    if on_path:
        candidates.append(on_path)
    candidates += sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    found: list[tuple[int, str]] = []
    for candidate in dict.fromkeys(candidates):
        try:
            out = subprocess.run([candidate, "--version"], capture_output=True, text=True, timeout=30).stdout  # noqa: S603
        except (OSError, subprocess.SubprocessError):
            continue
        major = _major(out.rsplit(")", 1)[-1]) or _major(out)
        if major is not None:
            found.append((major, candidate))
    if not found:
        raise BackupError(
            f"{name} was not found on PATH or in /usr/lib/postgresql/*/bin; install the PostgreSQL client "
            "programs (Debian: apt-get install postgresql-client)"
        )
    major, path = max(found)
    if server_major is not None and major < server_major:
        raise BackupError(
            f"{name} {major} is older than the PostgreSQL server {server_major}; install "
            f"postgresql-client-{server_major} (a dump needs a client at least as new as the server)"
        )
    return path


def _server_major(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SHOW server_version_num")).scalar_one()) // 10000
    except Exception as exc:
        raise BackupError(f"cannot connect to the database: {exc}") from exc
    finally:
        engine.dispose()


def _run(cmd: list[str], env: dict[str, str], what: str) -> None:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)  # noqa: S603 argument list, no shell
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        raise BackupError(f"{what} failed (exit {proc.returncode}): {detail}")


def snapshot_postgresql(url: str, target: Path) -> list[str]:
    pg_dump = find_pg_tool("pg_dump", _server_major(url))
    revision = revisions_url(url)
    conninfo, env = libpq_target(url)
    _run(
        [
            pg_dump,
            "--format=custom",
            "--no-owner",
            "--no-privileges",
            f"--file={target}",
            f"--dbname={conninfo}",
        ],
        env,
        "pg_dump",
    )
    return revision


def _pg_tables(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(
                conn.execute(
                    text(
                        "SELECT table_name FROM information_schema.tables "
                        "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
                    )
                ).scalars()
            )
    except Exception as exc:
        raise BackupError(f"cannot connect to the database: {exc}") from exc
    finally:
        engine.dispose()


def restore_postgresql(url: str, payload: Path, force: bool) -> str:
    refuse_non_empty(_pg_tables(url), make_url(url).database or "?", force)
    pg_restore = find_pg_tool("pg_restore", _server_major(url))
    conninfo, env = libpq_target(url)
    _run(
        [
            pg_restore,
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-privileges",
            "--single-transaction",
            "--exit-on-error",
            f"--dbname={conninfo}",
            str(payload),
        ],
        env,
        "pg_restore",
    )
    return make_url(url).database or ""
