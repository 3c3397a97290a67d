"""The `mitmachen` command: help for every subcommand, migrate, idempotent demo, create-admin, errors."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys

import pytest

from app.cli import build_parser, main
from app.demo import DEMO_USERS
from app.models import Role, User
from app.security import verify_password
from tests.conftest import query


@pytest.fixture
def env(monkeypatch, db):
    monkeypatch.setenv("DATABASE_URL", db.url)
    monkeypatch.setenv("ENVIRONMENT", "development")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    return db


def _subcommands() -> list[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return list(action.choices)


def test_help_on_every_subcommand(capsys):
    """`mitmachen --help` and `mitmachen COMMAND --help` describe each command."""
    names = _subcommands()
    assert {"serve", "migrate", "demo", "create-admin"} <= set(names)
    for name in [None, *names]:
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"] if name else ["--help"])
        assert exc.value.code == 0
        assert "usage: mitmachen" in capsys.readouterr().out


def test_console_script_installed():
    """The pyproject entry point is installed as a command."""
    exe = shutil.which("mitmachen") or str(sys.prefix) + "/bin/mitmachen"
    result = subprocess.run([exe, "serve", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "--workers" in result.stdout


def test_unknown_command_and_missing_args_exit_2(capsys):
    """Usage errors go to stderr with exit code 2."""
    for argv in (["frobnicate"], ["create-admin"], ["serve", "--port", "notanumber"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        assert "error" in capsys.readouterr().err


def test_migrate_and_demo_idempotent(env, capsys):
    """migrate is a no-op on a current database; demo adds its data once and nothing the second time."""
    assert main(["migrate"]) == 0
    assert main(["demo"]) == 0
    first = capsys.readouterr().out
    assert "resident@example.org" in first
    count = len(query(env, User))
    assert main(["demo"]) == 0
    assert "already present" in capsys.readouterr().out
    assert len(query(env, User)) == count
    assert {u.email for u in query(env, User)} >= {e for e, _n, _r in DEMO_USERS}


def test_demo_makes_no_accounts_in_production(env, monkeypatch, capsys):
    """Well-known demo passwords never reach a production system."""
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SECRET_KEY", "p" * 40)
    monkeypatch.setenv("BASE_URL", "https://mitmachen.example")
    assert main(["demo"]) == 0
    assert query(env, User) == []


def test_create_admin_from_stdin(env, monkeypatch, capsys):
    """create-admin reads the password from stdin when it is not a terminal; re-running promotes/resets."""
    monkeypatch.setattr(sys, "stdin", io.StringIO("a long admin password\n"))
    assert main(["create-admin", "Chefin@Example.org"]) == 0
    [user] = query(env, User, User.email == "chefin@example.org")
    assert user.role == Role.ADMIN.value and user.email_confirmed_at is not None
    assert verify_password(user.password_hash, "a long admin password")


@pytest.mark.parametrize(
    ("email", "password", "message"),
    [
        ("not-an-email", "a long admin password", "not a valid e-mail"),
        ("ok@example.org", "short", "password must have"),
    ],
)
def test_create_admin_bad_input(env, monkeypatch, capsys, email, password, message):
    """Bad e-mail or password: message on stderr, exit 2, nothing written."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(password + "\n"))
    assert main(["create-admin", email]) == 2
    assert message in capsys.readouterr().err
    assert query(env, User) == []


def test_configuration_error_exit_2(monkeypatch, capsys):
    """A production start without a real SECRET_KEY fails with a clear message."""
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    assert main(["migrate"]) == 2
    assert "SECRET_KEY" in capsys.readouterr().err


def test_migrate_and_demo_in_fresh_processes(tmp_path):
    """The quick start's commands work as separate processes (each imports only what it needs)."""
    exe = shutil.which("mitmachen") or str(sys.prefix) + "/bin/mitmachen"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'q.sqlite3'}", "ENVIRONMENT": "development"}
    env.pop("SECRET_KEY", None)
    for args in (["migrate"], ["demo"], ["demo"]):
        result = subprocess.run([exe, *args], capture_output=True, text=True, timeout=120, env=env)
        assert result.returncode == 0, result.stderr[-2000:]
    assert "already present" in result.stdout
