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
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, inspect, make_url, text
from sqlalchemy.engine import URL

from app.settings import Settings

FORMAT = "mitmachen-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
PAYLOAD = {"sqlite": "database.sqlite3", "postgresql": "database.pgdump"}
CHUNK = 1024 * 1024


class BackupError(Exception):
    """A backup or restore refused (``code`` 2: bad input) or failed (``code`` 1)."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


@dataclass
class RestoreResult:
    kind: str
    target: str
    revision: list[str]
    needs_migrate: bool


# --- helpers ------------------------------------------------------------------------------------------------


def app_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mitmachen")
    except PackageNotFoundError:  # pragma: no cover - running from a checkout without install
        return "unknown"


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


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def known_revisions() -> tuple[set[str], set[str]]:
    """(every revision of this version's migrations, the heads)."""
    from alembic.script import ScriptDirectory

    from app.migrations import alembic_config

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return {r.revision for r in script.walk_revisions()}, set(script.get_heads())


def _revisions_sqlite(path: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        if not conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='alembic_version'"
        ).fetchone():
            return []
        return sorted(r[0] for r in conn.execute("SELECT version_num FROM alembic_version"))
    finally:
        conn.close()


def _revisions_url(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return []
            return sorted(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    finally:
        engine.dispose()


# --- PostgreSQL client programs --------------------------------------------------------------------------


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
    return _revisions_sqlite(target)


def _snapshot_postgresql(url: str, target: Path) -> list[str]:
    pg_dump = find_pg_tool("pg_dump", _server_major(url))
    revision = _revisions_url(url)
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
        revision = (_snapshot_sqlite if kind == "sqlite" else _snapshot_postgresql)(url, payload)
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "app_version": app_version(),
            "alembic_revision": revision,
            "created_at": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "database": kind,
            "payload": payload.name,
            "size": payload.stat().st_size,
            "sha256": _sha256_file(payload),
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


# --- reading a backup ---------------------------------------------------------------------------------------


def read_backup(path: str | Path, dest_dir: Path) -> tuple[dict[str, Any], Path]:
    """Check a backup and unpack its payload into ``dest_dir``; BackupError(code 2) when it is unreadable,
    truncated, tampered with or not a Mitmachen backup."""
    path = Path(path)
    if not path.is_file():
        raise BackupError(f"no such backup file: {path}", 2)
    try:
        with tarfile.open(path, "r:*") as tar:
            member = tar.next()
            if member is None or member.name != MANIFEST or not member.isfile() or member.size > 64 * 1024:
                raise BackupError(f"{path} is not a Mitmachen backup (no manifest.json first)", 2)
            manifest = json.loads(tar.extractfile(member).read())  # type: ignore[union-attr]
            _check_manifest(manifest, path)
            member = tar.next()
            if member is None or member.name != manifest["payload"] or not member.isfile():
                raise BackupError(f"{path} lacks the database file {manifest['payload']}", 2)
            target = dest_dir / manifest["payload"]
            digest = hashlib.sha256()
            size = 0
            with tar.extractfile(member) as src, target.open("wb") as dst:  # type: ignore[union-attr]
                while block := src.read(CHUNK):
                    digest.update(block)
                    size += len(block)
                    dst.write(block)
    except BackupError:
        raise
    except (tarfile.TarError, EOFError, zlib.error, OSError, ValueError, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0].rstrip(":") if str(exc) else type(exc).__name__
        raise BackupError(f"{path} is damaged, truncated or not a backup archive ({reason})", 2) from exc
    if size != manifest["size"] or digest.hexdigest() != manifest["sha256"]:
        raise BackupError(
            f"{path} is damaged: the database file does not match the checksum in its manifest", 2
        )
    return manifest, target


def _check_manifest(manifest: Any, path: Path) -> None:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{path} is not a Mitmachen backup", 2)
    if manifest.get("version") != FORMAT_VERSION:
        raise BackupError(
            f"{path} has backup format version {manifest.get('version')!r}; this version reads {FORMAT_VERSION}",
            2,
        )
    kind = manifest.get("database")
    if kind not in PAYLOAD or manifest.get("payload") != PAYLOAD[kind]:
        raise BackupError(f"{path}: the manifest names an unknown database kind {kind!r}", 2)
    if not isinstance(manifest.get("size"), int) or not re.fullmatch(
        r"[0-9a-f]{64}", str(manifest.get("sha256"))
    ):
        raise BackupError(f"{path}: the manifest lacks the size or checksum of the database file", 2)
    if not isinstance(manifest.get("alembic_revision"), list):
        raise BackupError(f"{path}: the manifest lacks the schema revision", 2)


def _check_revision(manifest: dict[str, Any]) -> bool:
    """True when the backup's schema is older than this version's (run migrate after restoring)."""
    known, heads = known_revisions()
    revision = set(manifest["alembic_revision"])
    unknown = sorted(revision - known)
    if unknown:
        raise BackupError(
            f"the backup's schema revision {', '.join(unknown)} is unknown to this version "
            f"(app {app_version()}; backup made by {manifest.get('app_version')}): "
            "install that version or a newer one before restoring",
            2,
        )
    return revision != heads


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


def _refuse_non_empty(tables: list[str], where: str, force: bool) -> None:
    if tables and not force:
        raise BackupError(
            f"the database {where} is not empty ({len(tables)} tables); restoring replaces its content: "
            "stop the app, then run again with --force",
            2,
        )


def _restore_sqlite(url: str, payload: Path, force: bool) -> str:
    target = sqlite_path(url)
    _refuse_non_empty(_sqlite_tables(target), str(target), force)
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


def _restore_postgresql(url: str, payload: Path, force: bool) -> str:
    _refuse_non_empty(_pg_tables(url), make_url(url).database or "?", force)
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
        needs_migrate = _check_revision(manifest)
        target = (_restore_sqlite if kind == "sqlite" else _restore_postgresql)(url, payload, force)
    current = _revisions_sqlite(Path(target)) if kind == "sqlite" else _revisions_url(url)
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
