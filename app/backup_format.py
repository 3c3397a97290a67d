"""The backup file format (app/backup.py writes and restores it): the manifest, the payload's checksum, the
schema revisions a backup and this version know, and reading and checking a backup before anything changes.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import tarfile
import zlib
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, inspect, text

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


def app_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mitmachen")
    except PackageNotFoundError:  # pragma: no cover - running from a checkout without install
        return "unknown"


def sha256_file(path: Path) -> str:
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


def revisions_sqlite(path: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        if not conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='alembic_version'"
        ).fetchone():
            return []
        return sorted(r[0] for r in conn.execute("SELECT version_num FROM alembic_version"))
    finally:
        conn.close()


def revisions_url(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return []
            return sorted(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    finally:
        engine.dispose()


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


def check_revision(manifest: dict[str, Any]) -> bool:
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


def refuse_non_empty(tables: list[str], where: str, force: bool) -> None:
    if tables and not force:
        raise BackupError(
            f"the database {where} is not empty ({len(tables)} tables); restoring replaces its content: "
            "stop the app, then run again with --force",
            2,
        )
