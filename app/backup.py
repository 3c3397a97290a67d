"""Backups and restores of the whole database: ``mitmachen backup`` and ``mitmachen restore``.

A backup is one tar archive (gzip-compressed unless the file name ends in ``.tar``) holding

* ``manifest.json``: format and version, the app version, the Alembic revision(s), when it was made, the
  database kind, and the payload's name, size and SHA-256;
* the payload: ``database.sqlite3`` (SQLite's online backup API: a consistent copy while the app keeps
  writing, WAL included) or ``database.pgdump`` (``pg_dump --format=custom``).

Restoring checks the manifest and the payload's checksum before anything is changed (a corrupt or truncated
file changes nothing), refuses to overwrite a database that already has tables unless ``--force`` is given,
and replaces the database atomically: SQLite through a temporary file renamed over the old one, PostgreSQL
through ``pg_restore --single-transaction``. A backup from an older version restores fine and asks the
operator to run ``mitmachen migrate``; one from a newer version (an unknown revision) is refused.

Errors: message on stderr, exit 2 for bad input (unreadable backup, refused overwrite), 1 when the
operation failed (pg_dump missing or failing, database unreachable).

The format (manifest, checksum, schema revisions, reading a backup) is in app/backup_format.py, the
PostgreSQL client programs in app/backup_pg.py; their public names stay importable from here.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import shutil
import sqlite3
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import make_url

from app.backup_format import (  # re-exported: importable from app.backup as before
    CHUNK,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    PAYLOAD,
    BackupError,
    app_version,
    check_revision,
    known_revisions,
    read_backup,
    refuse_non_empty,
    revisions_sqlite,
    revisions_url,
    sha256_file,
)
from app.backup_pg import find_pg_tool, libpq_target, restore_postgresql, snapshot_postgresql
from app.settings import Settings

__all__ = [
    "CHUNK",
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST",
    "PAYLOAD",
    "BackupError",
    "RestoreResult",
    "app_version",
    "cmd_backup",
    "cmd_restore",
    "create_backup",
    "database_kind",
    "default_name",
    "find_pg_tool",
    "known_revisions",
    "libpq_target",
    "read_backup",
    "register",
    "restore_backup",
    "sqlite_path",
]


@dataclass
class RestoreResult:
    kind: str
    target: str
    revision: list[str]
    needs_migrate: bool


# --- helpers ------------------------------------------------------------------------------------------------


def database_kind(url: str) -> str:
    backend = make_url(url).get_backend_name()
    if backend not in PAYLOAD:
        raise BackupError(f"unsupported database {backend!r}: only sqlite and postgresql", 2)
    return backend


def sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up or restored", 2)
    return Path(database)


# --- backup -------------------------------------------------------------------------------------------------


def default_name(kind: str, now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    return f"mitmachen-{kind}-{now.strftime('%Y%m%dT%H%M%SZ')}.tar.gz"


def _snapshot_sqlite(url: str, target: Path) -> list[str]:
    source_path = sqlite_path(url)
    if not source_path.exists():
        raise BackupError(f"the database {source_path} does not exist", 2)
    source = sqlite3.connect(source_path, timeout=30)  # read-write: read-only cannot open a WAL without -shm
    dest = sqlite3.connect(target)
    try:
        # one step (pages=-1): the copy is one consistent snapshot, WAL content included; readers do not block
        # the app's writers in WAL mode
        source.backup(dest)
        dest.execute("PRAGMA journal_mode=DELETE")  # a self-contained file without -wal/-shm
        status = dest.execute("PRAGMA integrity_check").fetchone()[0]
        if status != "ok":
            raise BackupError(f"the copy fails SQLite's integrity check: {status}")
    finally:
        dest.close()
        source.close()
    return revisions_sqlite(target)


def _anonymous_member(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o600
    return info


def create_backup(settings: Settings, output: str | Path | None = None) -> tuple[Path, dict[str, Any]]:
    """Write a backup of the configured database; returns its path and manifest."""
    url = settings.effective_database_url
    kind = database_kind(url)
    now = dt.datetime.now(dt.UTC)
    out = Path(output) if output else Path(default_name(kind, now))
    if out.exists() and out.is_dir():
        raise BackupError(f"{out} is a directory", 2)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mitmachen-backup-", dir=out.parent) as tmp:
        payload = Path(tmp) / PAYLOAD[kind]
        revision = (_snapshot_sqlite if kind == "sqlite" else snapshot_postgresql)(url, payload)
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "app_version": app_version(),
            "alembic_revision": revision,
            "created_at": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "database": kind,
            "payload": payload.name,
            "size": payload.stat().st_size,
            "sha256": sha256_file(payload),
        }
        data = json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
        partial = Path(tmp) / "backup.partial"
        mode = "w" if out.name.endswith(".tar") else "w:gz"
        with tarfile.open(partial, mode) as tar:  # type: ignore[call-overload]
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime, info.mode = len(data), int(now.timestamp()), 0o600
            tar.addfile(info, io.BytesIO(data))
            tar.add(payload, arcname=payload.name, recursive=False, filter=_anonymous_member)
        os.chmod(partial, 0o600)  # personal data: readable by the operator only
        os.replace(partial, out)
    return out, manifest


# --- restore ------------------------------------------------------------------------------------------------


def _sqlite_tables(path: Path) -> list[str]:
    if not path.exists() or path.stat().st_size == 0:
        return []
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(
            f"the current database {path} cannot be read ({exc}); use --force to replace it", 2
        ) from exc


def _restore_sqlite(url: str, payload: Path, force: bool) -> str:
    target = sqlite_path(url)
    refuse_non_empty(_sqlite_tables(target), str(target), force)
    check = sqlite3.connect(payload)
    try:
        status = check.execute("PRAGMA integrity_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"the database file in the backup is not a SQLite database: {exc}", 2) from exc
    finally:
        check.close()
    if status != "ok":
        raise BackupError(f"the database file in the backup fails SQLite's integrity check: {status}", 2)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.restore-", dir=target.parent)
    os.close(fd)
    try:
        shutil.copyfile(payload, tmp_name)
        os.chmod(tmp_name, 0o600)
        if target.exists():  # fold the old WAL into the old file so no stale -wal is left behind
            try:
                old = sqlite3.connect(target, timeout=30)
                old.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                old.close()
            except sqlite3.DatabaseError:
                pass
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    for suffix in ("-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    return str(target)


def restore_backup(settings: Settings, path: str | Path, *, force: bool = False) -> RestoreResult:
    url = settings.effective_database_url
    kind = database_kind(url)
    with tempfile.TemporaryDirectory(prefix="mitmachen-restore-") as tmp:
        manifest, payload = read_backup(path, Path(tmp))
        if manifest["database"] != kind:
            raise BackupError(
                f"the backup holds a {manifest['database']} database, the configured database is {kind}; "
                "move data between database kinds with the exports, not with backups",
                2,
            )
        needs_migrate = check_revision(manifest)
        target = (_restore_sqlite if kind == "sqlite" else restore_postgresql)(url, payload, force)
    current = revisions_sqlite(Path(target)) if kind == "sqlite" else revisions_url(url)
    if sorted(current) != sorted(manifest["alembic_revision"]):
        raise BackupError(
            f"restored, but the database reports schema revision {current}, the manifest "
            f"{manifest['alembic_revision']}"
        )
    return RestoreResult(kind, target, current, needs_migrate)


# --- command line -------------------------------------------------------------------------------------------


def cmd_backup(args: argparse.Namespace) -> int:
    try:
        out, manifest = create_backup(Settings.from_env(), args.output)
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    print(
        f"backup written to {out} ({manifest['database']}, {manifest['size']} bytes, "
        f"schema {', '.join(manifest['alembic_revision']) or 'none'}, sha256 {manifest['sha256'][:16]}…)"
    )
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    try:
        result = restore_backup(Settings.from_env(), args.file, force=args.force)
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    print(f"restored into {result.target} (schema {', '.join(result.revision) or 'none'})")
    if result.needs_migrate:
        print("the backup is from an older version: run 'mitmachen migrate' before starting the app")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "backup",
        help="back up the database to one file",
        description="Back up the configured database while the app runs (SQLite: online backup API; "
        "PostgreSQL: pg_dump --format=custom) into a tar archive with a manifest and checksum. "
        "Gzip-compressed unless FILE ends in .tar.",
    )
    p.add_argument("-o", "--output", metavar="FILE", help="backup file (default: mitmachen-KIND-TIME.tar.gz)")
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser(
        "restore",
        help="restore the database from a backup",
        description="Check a backup (manifest, checksum, schema revision) and restore it into the configured "
        "database. Stop the app first. A database that already has tables is only replaced with --force.",
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--force", action="store_true", help="replace a database that is not empty")
    p.set_defaults(func=cmd_restore)
