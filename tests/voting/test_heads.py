"""The signing key (created once with mode 0600, reused, never in the repository) and signed tree heads:
signed at the close, on demand, at least every N minutes while a vote is open (cron), all kept; the
``mitmachen log`` commands."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import stat
from types import SimpleNamespace

import pytest
from test_bundle import T0, build_process, fixed_key

from app.database import new_session
from app.settings import ROOT
from voting import audit, audit_cli, heads, keys, verifier


def test_key_file_is_created_private_and_reused(tmp_path):
    path = tmp_path / "data" / "keys" / "audit-ed25519.pem"
    first = keys.load_or_create(path)
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    content = path.read_bytes()
    assert b"PRIVATE KEY" in content
    keys._cache.clear()
    again = keys.load_or_create(path)
    assert again.key_id == first.key_id and path.read_bytes() == content
    assert (
        len(first.key_id) == 64 and first.verify(first.sign(b"x"), b"x") and not first.verify(b"0" * 64, b"x")
    )


def test_key_path_comes_from_the_settings(tmp_path):
    assert keys.key_path(SimpleNamespace(data_dir=str(tmp_path))) == tmp_path / "keys" / "audit-ed25519.pem"
    custom = tmp_path / "elsewhere.pem"
    assert keys.key_path(SimpleNamespace(data_dir="/x", audit_key_file=str(custom))) == custom


def test_key_is_not_in_the_repository():
    """The default key location (DATA_DIR, var/ by default) is ignored by git; no key file is tracked."""
    import shutil
    import subprocess

    ignored = (ROOT / ".gitignore").read_text().split()
    assert "var/" in ignored
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = subprocess.run(
        ["git", "ls-files", "*.pem"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert [p for p in tracked.stdout.split() if "/golden/" not in p] == []


def test_a_broken_key_file_is_refused(tmp_path):
    path = tmp_path / "bad.pem"
    path.write_text("not a key")
    with pytest.raises(keys.AuditKeyError):
        keys.load_or_create(path)


def test_sign_head_statement_and_order(db):
    key = fixed_key()
    with new_session(db.engine, write=True) as s:
        empty = heads.sign_head(s, log_id="t", reason="demand", key=key)
        for n in range(5):
            audit.append(s, log_id="t", entry_type="test", payload={"n": n})
        head = heads.sign_head(s, log_id="t", reason="demand", key=key)
        s.commit()
    assert empty.size == 0 and bytes(empty.root) == audit.EMPTY_ROOT
    data = heads.head_json(head)
    assert data["size"] == 5 and data["key_id"] == key.key_id and data["reason"] == "demand"
    assert heads.verify_head_json(data, key.public)
    assert not heads.verify_head_json({**data, "size": 4}, key.public)
    assert not heads.verify_head_json({**data, "root": "00" * 32}, key.public)
    with new_session(db.engine) as s:
        assert heads.latest_head(s, "t").id == head.id
        assert [h.size for h in heads.list_heads(s, "t")] == [0, 5]
        assert bytes(heads.latest_head(s, "t").root) == audit.root(s, "t")
        stored = heads.head_json(heads.latest_head(s, "t"))
    assert stored == data  # the timestamp survives the database round trip to the microsecond
    with new_session(db.engine, write=True) as s, pytest.raises(ValueError):
        heads.sign_head(s, log_id="t", reason="because", key=key)


def test_heads_at_close_on_demand_and_kept(db):
    """The close signs a head; every head is kept (none is ever replaced)."""
    built = build_process(db.engine)
    with new_session(db.engine) as s:
        listed = heads.list_heads(s, built.log_id)
        reasons = [h.reason for h in listed]
        closed = next(h for h in listed if h.reason == "close")
        entry = audit.decode(bytes(audit.entries(s, built.log_id, start=closed.size - 1, limit=1)[0].entry))
    assert "close" in reasons and "interval" in reasons and "demand" in reasons
    assert entry["type"] == "process.closed"  # the close head covers exactly the close
    assert len(listed) == len({h.id for h in listed})


def test_maybe_sign_due_every_n_minutes(db):
    """At least every N minutes while the log grows; nothing when nothing changed or the last head is fresh."""
    key = fixed_key()
    now = T0
    with new_session(db.engine, write=True) as s:
        assert heads.maybe_sign_due(s, log_id="v", every_minutes=10, key=key, now=now) is None  # empty log
        audit.append(s, log_id="v", entry_type="test", payload={})
        first = heads.maybe_sign_due(s, log_id="v", every_minutes=10, key=key, now=now)
        assert first is not None and first.reason == "interval" and first.size == 1
        assert (
            heads.maybe_sign_due(s, log_id="v", every_minutes=10, key=key, now=now + dt.timedelta(minutes=30))
            is None
        )
        audit.append(s, log_id="v", entry_type="test", payload={})
        assert (
            heads.maybe_sign_due(s, log_id="v", every_minutes=10, key=key, now=now + dt.timedelta(minutes=9))
            is None
        )
        second = heads.maybe_sign_due(
            s, log_id="v", every_minutes=10, key=key, now=now + dt.timedelta(minutes=10)
        )
        assert second is not None and second.size == 2
        s.commit()


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="mitmachen")
    sub = parser.add_subparsers(dest="command", required=True)
    audit_cli.register(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


@pytest.fixture
def cli_env(db, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", db.url)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ENVIRONMENT", "test")
    yield tmp_path / "data" / "keys" / "audit-ed25519.pem"
    keys._configured = None


def test_cli_log_sign_heads_and_bundle(cli_env, db, tmp_path, capsys):
    """`mitmachen log sign` on demand and `--due` for every open vote (cron); `log heads`; `log bundle`."""
    open_vote = build_process(db.engine, close=False, key=keys.load_or_create(cli_env))
    closed = build_process(db.engine, seed=8, key=keys.load_or_create(cli_env))
    with new_session(db.engine, write=True) as s:
        audit.append(s, log_id=open_vote.log_id, entry_type="ballot.cast", payload={"ballot": "x"})
        audit.append(s, log_id=closed.log_id, entry_type="links.destroyed", payload={"links": 0})
        s.commit()
    assert _cli(["log", "sign", "--due", "--every", "1"]) == 0
    out = capsys.readouterr().out
    assert f"signed {open_vote.log_id}" in out and closed.log_id not in out
    assert _cli(["log", "sign", "--due"]) == 0 and "no head was due" in capsys.readouterr().out
    assert _cli(["log", "sign", "--log", closed.log_id]) == 0
    assert f"signed {closed.log_id}" in capsys.readouterr().out
    assert _cli(["log", "heads", "--log", closed.log_id, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[-1]["reason"] == "demand" and all(h["log"] == closed.log_id for h in listed)
    assert _cli(["log", "heads", "--log", closed.log_id]) == 0 and "close" in capsys.readouterr().out
    assert _cli(["log", "bundle", "--log", closed.log_id, "-o", str(tmp_path / "c.zip")]) == 0
    assert verifier.verify(tmp_path / "c.zip").entries == listed[-1]["size"]
    assert _cli(["log", "bundle", "--log", "process:4242", "-o", str(tmp_path / "x.zip")]) == 2
    assert _cli(["log", "sign"]) == 2
    assert _cli(["log", "sign", "--log", "process:4242"]) == 2
    with pytest.raises(SystemExit):
        _cli(["log", "sign", "--log", "process:abc"])
