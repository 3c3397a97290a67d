"""Backups: `mitmachen backup` and `mitmachen restore` on SQLite and PostgreSQL.

The round trip casts real ballots, closes and tallies a vote, backs the database up, restores it into a
fresh database and checks there that the audit bundle built from the restored data passes the standalone
verifier and that ballots, voter links and the published result are the same. Bad input (a damaged,
truncated or foreign file, a non-empty target, a backup from a newer version) exits 2 and changes nothing.
"""

from __future__ import annotations

import io
import json
import sqlite3
import tarfile
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from app import backup, backup_pg
from app.cli import main as cli
from app.database import make_engine, new_session
from app.migrations import upgrade
from app.models import RateLimitEvent, User
from app.settings import Settings
from tests.conftest import _create_pg_database, _drop_pg_database
from tests.voting.test_ballots import cast, close, make_process, mount_voting, project_ids
from voting import audit, bundle, lifecycle, verifier
from voting.models import Ballot, LogEntry, Process, TallyRun, VoterLink


@pytest.fixture
def fresh_url(db, tmp_path):
    """A URL of a brand-new, empty database of the same kind as ``db``."""
    if db.backend == "postgresql":
        url, name = _create_pg_database()
        yield url
        _drop_pg_database(name)
    else:
        yield f"sqlite:///{tmp_path / 'restored' / 'fresh.sqlite3'}"


def settings_for(url: str) -> Settings:
    return Settings(environment="test", database_url=url)


def vote_with_results(db, app, make_user) -> Process:
    """Four residents vote (one changes the ballot), the vote closes, is tallied and published."""
    mount_voting(app)
    process = make_process(db)
    ids = project_ids(db, process)
    voters = [make_user() for _ in range(4)]
    for n, voter in enumerate(voters):
        cast(db, app, process, voter, ids[n : n + 2])
    cast(db, app, process, voters[0], [ids[5]])
    close(db, process)
    lifecycle.run_tally(db.engine, process_id=process.id)
    with new_session(db.engine, write=True) as s:
        lifecycle.publish_results(s, process=s.get(Process, process.id))
        s.commit()
    return process


def snapshot(engine, process_id: int) -> dict:
    with new_session(engine) as s:
        return {
            "ballots": sorted(
                (b.ballot_uid, b.selection, b.version, b.log_index)
                for b in s.execute(select(Ballot).where(Ballot.process_id == process_id)).scalars()
            ),
            "links": sorted(
                (v.voter_hash, v.ballot_uid)
                for v in s.execute(select(VoterLink).where(VoterLink.process_id == process_id)).scalars()
            ),
            "entries": s.execute(select(func.count()).select_from(LogEntry)).scalar_one(),
            "results": sorted(
                (r.scope, r.rule, r.result)
                for r in s.execute(
                    select(TallyRun).where(
                        TallyRun.process_id == process_id, TallyRun.published_at.is_not(None)
                    )
                ).scalars()
            ),
            "users": sorted(s.execute(select(User.email)).scalars(), key=str),
        }


def test_backup_and_restore_into_a_fresh_database_keep_a_verifiable_audit_log(
    db, app, make_user, fresh_url, tmp_path, monkeypatch, capsys
):
    process = vote_with_results(db, app, make_user)
    before = snapshot(db.engine, process.id)
    assert before["results"] and len(before["ballots"]) == 4 and len(before["links"]) == 4

    monkeypatch.setenv("DATABASE_URL", db.url)
    target = tmp_path / "nightly.tar.gz"
    assert cli(["backup", "-o", str(target)]) == 0
    assert "backup written to" in capsys.readouterr().out
    assert target.stat().st_mode & 0o077 == 0  # personal data: owner only
    with tarfile.open(target) as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile("manifest.json").read())
    assert names == ["manifest.json", backup.PAYLOAD[db.backend]]
    assert manifest["database"] == db.backend
    assert manifest["alembic_revision"] == sorted(backup.known_revisions()[1])
    assert manifest["format"] == "mitmachen-backup" and manifest["version"] == 1

    monkeypatch.setenv("DATABASE_URL", fresh_url)
    assert cli(["restore", str(target)]) == 0
    out = capsys.readouterr().out
    assert "restored into" in out and "mitmachen migrate" not in out

    engine = make_engine(settings_for(fresh_url))
    try:
        assert snapshot(engine, process.id) == before
        bundle_path = tmp_path / "audit.zip"
        log_id = audit.process_log(process.id)
        with new_session(engine, write=True) as s:
            bundle.prepare(s, log_id=log_id)  # signs a head over the whole restored log
            s.commit()
        with new_session(engine) as s, bundle_path.open("wb") as fh:
            bundle.write_zip(s, log_id=log_id, target=fh)
        report = verifier.verify(bundle_path)
        assert report.closed and sum(report.ballots.values()) == 4 and report.replaced == 1
        published = {r[0]: json.loads(r[2]) for r in before["results"]}
        assert [r["selected"] for r in report.results] == [published[0]["selected"]]
        assert cli(["verify", str(bundle_path)]) == 0
    finally:
        engine.dispose()


def test_restore_refuses_a_database_with_tables_unless_forced(db, make_user, tmp_path, monkeypatch, capsys):
    make_user(email="kept@example.org")
    monkeypatch.setenv("DATABASE_URL", db.url)
    target = tmp_path / "b.tar"
    assert cli(["backup", "-o", str(target)]) == 0
    assert target.read_bytes()[:2] != b"\x1f\x8b"  # .tar: not compressed
    make_user(email="later@example.org")
    capsys.readouterr()

    assert cli(["restore", str(target)]) == 2
    err = capsys.readouterr().err
    assert "not empty" in err and "--force" in err
    with new_session(db.engine) as s:
        assert (
            s.execute(
                select(func.count()).select_from(User).where(User.email == "later@example.org")
            ).scalar_one()
            == 1
        )

    db.engine.dispose()  # the app would be stopped for a restore
    assert cli(["restore", str(target), "--force"]) == 0
    with new_session(db.engine) as s:
        emails = set(s.execute(select(User.email)).scalars())
    assert "kept@example.org" in emails and "later@example.org" not in emails


def _tamper(src: Path, dst: Path, *, manifest=None, payload=None) -> None:
    with tarfile.open(src) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    with tarfile.open(dst, "w:gz") as out:
        for member, data in members:
            if member.name == "manifest.json" and manifest is not None:
                data = json.dumps(manifest(json.loads(data))).encode()
            elif member.name != "manifest.json" and payload is not None:
                data = payload(data)
            member.size = len(data)
            out.addfile(member, io.BytesIO(data))


def _flip(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]


BAD_BACKUPS = {
    "truncated": lambda src, dst: dst.write_bytes(src.read_bytes()[: src.stat().st_size // 2]),
    "not-an-archive": lambda src, dst: dst.write_bytes(b"SQLite format 3\x00" + b"\x00" * 100),
    "flipped-byte": lambda src, dst: _tamper(src, dst, payload=_flip),
    "foreign-manifest": lambda src, dst: _tamper(src, dst, manifest=lambda m: {**m, "format": "other"}),
    "future-format": lambda src, dst: _tamper(src, dst, manifest=lambda m: {**m, "version": 2}),
    "newer-schema": lambda src, dst: _tamper(
        src, dst, manifest=lambda m: {**m, "alembic_revision": ["9999"]}
    ),
    "empty": lambda src, dst: dst.write_bytes(b""),
}


@pytest.mark.parametrize("damage", sorted(BAD_BACKUPS))
def test_a_damaged_or_foreign_backup_exits_2_and_changes_nothing(db, tmp_path, monkeypatch, capsys, damage):
    if db.backend == "postgresql":
        pytest.skip("the checks run before the database is touched; SQLite shows it")
    monkeypatch.setenv("DATABASE_URL", db.url)
    good = tmp_path / "good.tar.gz"
    assert cli(["backup", "-o", str(good)]) == 0
    bad = tmp_path / "bad.tar.gz"
    BAD_BACKUPS[damage](good, bad)
    fresh = tmp_path / "new" / "target.sqlite3"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{fresh}")
    capsys.readouterr()
    assert cli(["restore", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    expected = {
        "newer-schema": "unknown to this version",
        "future-format": "format version",
        "flipped-byte": "checksum",
    }.get(damage, "")
    assert expected in err
    assert not fresh.exists()


def test_missing_file_and_wrong_database_kind_exit_2(db, tmp_path, monkeypatch, capsys):
    if db.backend == "postgresql":
        pytest.skip("SQLite is enough for argument checks")
    monkeypatch.setenv("DATABASE_URL", db.url)
    assert cli(["restore", str(tmp_path / "nope.tar.gz")]) == 2
    assert "no such backup file" in capsys.readouterr().err
    good = tmp_path / "b.tar.gz"
    assert cli(["backup", "-o", str(good)]) == 0
    _tamper(good, tmp_path / "pg.tar.gz", manifest=lambda m: {**m, "database": "postgresql", "payload": "x"})
    assert cli(["restore", str(tmp_path / "pg.tar.gz")]) == 2


def test_a_backup_of_an_older_schema_restores_and_asks_for_migrate(tmp_path, monkeypatch, capsys):
    known, heads = backup.known_revisions()
    old = tmp_path / "old.sqlite3"
    upgrade(f"sqlite:///{old}", "0006")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{old}")
    assert cli(["backup", "-o", str(tmp_path / "old.tar.gz")]) == 0
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'new.sqlite3'}")
    capsys.readouterr()
    assert cli(["restore", str(tmp_path / "old.tar.gz")]) == 0
    out = capsys.readouterr().out
    assert "(schema 0006)" in out and "run 'mitmachen migrate'" in out
    assert "0006" not in heads
    assert cli(["migrate"]) == 0


def test_sqlite_backup_is_consistent_while_the_app_writes(tmp_path):
    """The online backup API copies one consistent snapshot while another connection keeps committing."""
    url = f"sqlite:///{tmp_path / 'busy.sqlite3'}"
    upgrade(url)
    engine = make_engine(settings_for(url))
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:
        n = 0
        while not stop.is_set():
            with new_session(engine, write=True) as s:
                s.add(RateLimitEvent(key=f"k{n}"))
                s.add(RateLimitEvent(key=f"k{n}"))  # pairs: a torn copy would show an odd count
                s.commit()
            n += 1
            written.append(n)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(written) < 20:
            stop.wait(0.01)
        out, manifest = backup.create_backup(settings_for(url), tmp_path / "busy.tar.gz")
    finally:
        stop.set()
        thread.join()
        engine.dispose()
    with backup.tempfile.TemporaryDirectory() as tmp:
        _manifest, payload = backup.read_backup(out, Path(tmp))
        conn = sqlite3.connect(payload)
        count = conn.execute("SELECT count(*) FROM rate_limit_event").fetchone()[0]
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        conn.close()
    assert count % 2 == 0 and 40 <= count <= 2 * len(written)


def test_pg_dump_missing_or_too_old_is_a_clear_failure(monkeypatch):
    monkeypatch.setattr(backup_pg.shutil, "which", lambda name: None)
    monkeypatch.setattr(backup_pg.glob, "glob", lambda pattern: [])
    with pytest.raises(backup.BackupError, match="apt-get install postgresql-client") as exc:
        backup.find_pg_tool("pg_dump")
    assert exc.value.code == 1

    monkeypatch.undo()
    if backup.shutil.which("pg_dump") is None:
        pytest.skip("no pg_dump installed")
    with pytest.raises(backup.BackupError, match="postgresql-client-99"):
        backup.find_pg_tool("pg_dump", server_major=99)


def test_libpq_target_keeps_the_password_off_the_command_line():
    conninfo, env = backup.libpq_target(
        "postgresql+psycopg://app:s3cr%40t@db.example:6432/mitmachen?sslmode=require"
    )
    assert conninfo == "postgresql://app@db.example:6432/mitmachen?sslmode=require"
    assert env["PGPASSWORD"] == "s3cr@t"
    with pytest.raises(backup.BackupError):
        backup.database_kind("mysql://x/y")


def test_restore_checks_tables_of_the_configured_postgresql_database(db, make_user, fresh_url, tmp_path):
    if db.backend != "postgresql":
        pytest.skip("PostgreSQL only")
    out, _manifest = backup.create_backup(settings_for(db.url), tmp_path / "pg.tar.gz")
    backup.restore_backup(settings_for(fresh_url), out)
    with pytest.raises(backup.BackupError, match="not empty") as exc:
        backup.restore_backup(settings_for(fresh_url), out)
    assert exc.value.code == 2
    result = backup.restore_backup(settings_for(fresh_url), out, force=True)
    assert result.kind == "postgresql" and not result.needs_migrate
    engine = make_engine(settings_for(fresh_url))
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM theme")).scalar_one() > 0
    finally:
        engine.dispose()
