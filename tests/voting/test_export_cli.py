"""``mitmachen export PROCESS --format ... -o FILE`` (voting/export_cli.py): the same files as the web
exports, a progress bar on stderr, errors on stderr with exit status 2."""

from __future__ import annotations

import argparse
import csv
import io
import json

import pytest
from openpyxl import load_workbook

from tests.voting.test_results import voted_process
from voting import export_cli


@pytest.fixture
def env_db(db, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", db.url)
    return db


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="mitmachen")
    sub = parser.add_subparsers(dest="command", required=True)
    export_cli.register(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def test_every_format_through_the_command_line(env_db, app, make_user, tmp_path, capsys):
    """csv (; on request), xlsx, json and pb files, written completely; pb shows progress on stderr."""
    process = voted_process(env_db, app, make_user, rule="mes")
    for fmt in ("csv", "xlsx", "json", "pb"):
        out = tmp_path / f"export.{fmt}"
        extra = ["--semicolon"] if fmt == "csv" else []
        assert cli(["export", str(process.id), "--format", fmt, "-o", str(out), *extra]) == 0
        assert out.exists() and out.stat().st_size > 0
    rows = list(csv.reader(io.StringIO((tmp_path / "export.csv").read_text("utf-8-sig")), delimiter=";"))
    assert rows[0][:3] == ["ballot", "project_id", "title"] and len(rows) == 4
    wb = load_workbook(tmp_path / "export.xlsx")
    assert wb.worksheets[0].max_row == 4
    data = json.loads((tmp_path / "export.json").read_text("utf-8"))
    assert data["ballots"][0]["cost_cents"] == 70_00
    pb = (tmp_path / "export.pb").read_text("utf-8")
    assert "num_votes;10" in pb and pb.count("\n") > 20
    err = capsys.readouterr().err
    assert "100%" in err and "wrote" in err
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".export-")]


def test_bad_input_exits_2(env_db, app, make_user, tmp_path, capsys):
    """Unknown process or ballot, an unwritable path, an unknown format: exit 2 with a message."""
    process = voted_process(env_db, app, make_user)
    assert cli(["export", "999999", "--format", "csv", "-o", str(tmp_path / "x.csv")]) == 2
    assert "no process 999999" in capsys.readouterr().err
    assert (
        cli(["export", str(process.id), "--format", "pb", "--scope", "77", "-o", str(tmp_path / "x.pb")]) == 2
    )
    assert "no ballot 77" in capsys.readouterr().err
    assert cli(["export", str(process.id), "--format", "csv", "-o", str(tmp_path / "missing" / "x.csv")]) == 2
    assert "cannot write" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli(["export", str(process.id), "--format", "doc", "-o", str(tmp_path / "x.doc")])
    assert exc.value.code == 2
    assert list(tmp_path.iterdir()) == []
