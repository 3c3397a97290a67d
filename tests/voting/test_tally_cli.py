"""The ``tally`` subcommand."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from voting.cli import main, register, run_tally

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "pb-samples"
EXPECTED = json.loads((SAMPLES / "expected.json").read_text())
ASSEN = SAMPLES / "Netherlands_Assen_2024.pb"


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints exactly one JSON object with the rule, the selection in order, cost and budget."""
    assert main(["tally", str(ASSEN), "--rule", "mes-add1-greedy", "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    payload = json.loads(out)
    ref = EXPECTED[ASSEN.name]["rules"]["mes_cost_add1_greedy"]
    assert payload["rule"] == "mes-add1-greedy"
    assert payload["selected"] == ref["selected"]
    assert payload["cost"] == int(ref["cost"])
    assert payload["budget"] == 100000
    assert isinstance(payload["cost"], int) and isinstance(payload["budget"], int)


@pytest.mark.parametrize("rule", ["greedy", "mes", "mes-add1", "phragmen"])
def test_json_for_each_rule(rule: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Every approval rule runs from the command line and reports the reference total cost."""
    assert main(["tally", str(ASSEN), "--rule", rule, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    key = {
        "greedy": "greedy_votes",
        "mes": "mes_cost",
        "mes-add1": "mes_cost_add1",
        "phragmen": "seq_phragmen",
    }[rule]
    assert payload["cost"] == int(EXPECTED[ASSEN.name]["rules"][key]["cost"])


def test_explain_json_and_text(capsys: pytest.CaptureFixture[str]) -> None:
    """--explain adds per-project figures: prices for funded projects, reasons for the others."""
    assert main(["tally", str(ASSEN), "--rule", "mes", "--json", "--explain"]) == 0
    payload = json.loads(capsys.readouterr().out)
    rows = {row["project_id"]: row for row in payload["explain"]}
    assert len(rows) == 14
    assert rows["3"]["position"] == 1 and rows["3"]["price"] > 0
    assert rows["8"]["reason"] == "supporters-budget-insufficient" and rows["8"]["needed"] > 0
    assert main(["tally", str(ASSEN), "--rule", "greedy", "--explain"]) == 0
    text = capsys.readouterr().out
    assert "Selected (7): 3, 9, 8, 11, 2, 13, 14" in text
    assert "Total cost: 99200 of budget 100000" in text
    assert "did not fit in the budget left" in text


def test_human_output(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --json: selected ids, total cost and budget as text."""
    path = SAMPLES / "Worldwide_Mechanical_Turk_Utilities_3.pb"
    assert main(["tally", str(path), "--rule", "mes"]) == 0
    out = capsys.readouterr().out
    assert "Selected (6): 3, 13, 25, 7, 51, 40" in out
    assert "Total cost: 416000 of budget 500000 (left: 84000)" in out


def test_malformed_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A malformed file exits with 2 and names the line on stderr."""
    bad = tmp_path / "bad.pb"
    text = ASSEN.read_text(encoding="utf-8").replace("\r\n", "\n").replace("3;7200;", "3;seven;", 1)
    bad.write_text(text, encoding="utf-8")
    assert main(["tally", str(bad), "--rule", "greedy", "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "line 20: cost of project '3' is not a number" in captured.err


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file that cannot be read exits with 2."""
    assert main(["tally", str(tmp_path / "missing.pb"), "--rule", "greedy"]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_rule_not_for_this_vote_type(capsys: pytest.CaptureFixture[str]) -> None:
    """Sequential Phragmen on cumulative ballots exits with 2 and says why."""
    path = SAMPLES / "Poland_Gdansk_2020_Olszynka.pb"
    assert main(["tally", str(path), "--rule", "phragmen", "--json"]) == 2
    err = capsys.readouterr().err
    assert "phragmen does not apply to cumulative ballots" in err


def test_decimal_amounts_in_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Whole amounts are JSON ints, others exact decimal strings."""
    path = tmp_path / "dec.pb"
    path.write_text(
        "META\nkey;value\nbudget;100.5\nvote_type;approval\nPROJECTS\nproject_id;cost\n"
        "a;60.25\nb;40\nVOTES\nvoter_id;vote\n1;a,b\n",
        encoding="utf-8",
    )
    assert main(["tally", str(path), "--rule", "greedy", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["selected"] == ["a", "b"]
    assert payload["cost"] == "100.25"
    assert payload["budget"] == "100.5"


def test_register_on_another_parser(capsys: pytest.CaptureFixture[str]) -> None:
    """register() plugs the subcommand into any argparse parser, with run_tally as its func."""
    parser = argparse.ArgumentParser(prog="other")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["tally", str(ASSEN), "--rule", "greedy"])
    assert args.func is run_tally
    assert args.func(args) == 0
    assert "Rule: greedy" in capsys.readouterr().out
