"""Reading and writing pabulib files."""

from __future__ import annotations

import gzip
import hashlib
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from voting.pabulib import (
    PabulibError,
    election_rows,
    format_number,
    format_pabulib,
    parse_pabulib,
    read_pabulib,
    write_pabulib,
)

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "pb-samples"
EXPECTED = json.loads((SAMPLES / "expected.json").read_text())
FILES = sorted(EXPECTED)

GOOD = """META
key;value
description;"Budget; with ""quotes"" and a semicolon"
budget;1000.5
vote_type;approval
PROJECTS
project_id;cost;name
1;500.25;"Park; benches"
2;300;Bike lane
VOTES
voter_id;vote;age
v1;1,2;34
v2;2;None
v3;;51
"""


@pytest.mark.parametrize("name", FILES)
def test_every_sample_parses(name: str) -> None:
    """Each sample reads with the vote type, voters, projects and budget the reference recorded."""
    path = SAMPLES / name
    case = EXPECTED[name]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == case["sha256"]
    election = read_pabulib(path)
    assert election.vote_type == case["vote_type"]
    assert election.profile.voters == case["voters"]
    assert len(election.profile.project_ids) == case["projects"]
    assert election.profile.budget == Fraction(case["budget"])


def test_quoted_fields_decimals_and_empty_votes() -> None:
    """Quoted fields keep their semicolons and doubled quotes; decimals are exact; a vote may be empty."""
    election = parse_pabulib(GOOD)
    assert election.meta["description"] == 'Budget; with "quotes" and a semicolon'
    assert election.projects[0]["name"] == "Park; benches"
    assert election.profile.costs == (Fraction("500.25"), Fraction(300))
    assert election.profile.budget == Fraction(2001, 2)
    assert election.profile.ballots.lengths().tolist() == [2, 1, 0]
    assert election.voters == {"voter_id": ["v1", "v2", "v3"], "age": ["34", "None", "51"]}


def test_gzip_by_magic_bytes_and_by_name(tmp_path: Path) -> None:
    """A gzip-compressed file is read whether it is called .pb.gz or .pb."""
    raw = (SAMPLES / "Poland_Zabrze_2020_Zandka.pb").read_bytes()
    plain = read_pabulib(raw).profile
    for name in ("zandka.pb.gz", "zandka.pb"):
        path = tmp_path / name
        path.write_bytes(gzip.compress(raw))
        again = read_pabulib(path).profile
        assert again.project_ids == plain.project_ids
        assert np.array_equal(again.ballots.items, plain.ballots.items)
    with pytest.raises(PabulibError, match="gzip"):
        read_pabulib(b"\x1f\x8b not really gzip")


def _replace(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


MALFORMED = [
    pytest.param(GOOD.split("VOTES")[0], 9, "missing section", id="missing-votes"),
    pytest.param(_replace("budget;1000.5\n", ""), 5, "budget", id="missing-budget"),
    pytest.param(_replace("budget;1000.5", "budget;lots"), 4, "not a number", id="bad-budget"),
    pytest.param(_replace("2;300;Bike lane", "2;3x0;Bike lane"), 9, "not a number", id="bad-cost"),
    pytest.param(_replace("2;300;Bike lane", "2;-5;Bike lane"), 9, "negative", id="negative-cost"),
    pytest.param(_replace("v1;1,2;34", "v1;1,7;34"), 12, "unknown project '7'", id="unknown-project"),
    pytest.param(_replace("v2;2;None", "v2;2"), 13, "expected 3 fields, found 2", id="too-few-fields"),
    pytest.param(_replace("1;500.25;", "1;500.25;x;"), 8, "expected 3 fields, found 4", id="too-many"),
    pytest.param(_replace("2;300;Bike lane", "1;300;Bike lane"), 9, "listed twice", id="duplicate-id"),
    pytest.param(_replace("v1;1,2;34", "v1;1,1;34"), 12, "same project twice", id="duplicate-vote"),
    pytest.param(_replace("v3;;51", "v1;;51"), 14, "voter 'v1' listed twice", id="duplicate-voter"),
    pytest.param(_replace("vote_type;approval", "vote_type;lottery"), 5, "vote_type", id="vote-type"),
    pytest.param(_replace("voter_id;vote;age", "voter_id;age"), 11, "'vote'", id="no-vote-column"),
    pytest.param(_replace("META\n", ""), 1, "start with a META", id="no-meta"),
    pytest.param(_replace("PROJECTS", "VOTES"), 6, "out of place", id="section-order"),
    pytest.param(_replace('"Park; benches"', '"Park; "benches'), 8, "quoting", id="bad-quote"),
]


@pytest.mark.parametrize(("text", "line", "message"), MALFORMED)
def test_malformed_files_name_the_line(text: str, line: int, message: str) -> None:
    """Malformed input raises PabulibError whose text names the line number."""
    with pytest.raises(PabulibError) as info:
        parse_pabulib(text)
    assert info.value.line == line
    assert str(info.value).startswith(f"line {line}: ")
    assert message in str(info.value)


def test_points_must_match_votes() -> None:
    """Cumulative ballots need one number of points per project, each a number."""
    text = (
        GOOD.replace("vote_type;approval", "vote_type;cumulative")
        .replace("voter_id;vote;age", "voter_id;vote;points;age")
        .replace("v1;1,2;34", "v1;1,2;3,1.5;34")
    )
    text = text.replace("v2;2;None", "v2;2;1;None").replace("v3;;51", "v3;;;51")
    prof = parse_pabulib(text).profile
    assert prof.ballots.points_scale == 2
    assert prof.ballots.points.tolist() == [6, 3, 2]
    with pytest.raises(PabulibError, match="line 12: 2 projects in vote but 1 points"):
        parse_pabulib(text.replace("3,1.5", "3"))
    with pytest.raises(PabulibError, match="line 13: points is not a number"):
        parse_pabulib(text.replace("v2;2;1;", "v2;2;one;"))


def test_invalid_utf8_names_the_line() -> None:
    """Bytes that are not UTF-8 are reported with their line."""
    raw = GOOD.encode().replace(b"Bike lane", b"Bike \xff lane")
    with pytest.raises(PabulibError, match="^line 9: not valid UTF-8"):
        read_pabulib(raw)


def test_unreadable_file(tmp_path: Path) -> None:
    """A missing file is a PabulibError too."""
    with pytest.raises(PabulibError, match="cannot read"):
        read_pabulib(tmp_path / "nope.pb")


@pytest.mark.parametrize("name", FILES)
def test_round_trip_of_every_sample(name: str, tmp_path: Path) -> None:
    """Writing a parsed sample reproduces its text (LF line ends); reading that gives the same election."""
    first = read_pabulib(SAMPLES / name)
    meta, projects, votes = election_rows(first)
    path = tmp_path / "copy.pb"
    text = write_pabulib(path, meta, projects, votes)
    original = (SAMPLES / name).read_bytes().decode("utf-8-sig").replace("\r\n", "\n")
    assert text == (original if original.endswith("\n") else original + "\n")
    again = read_pabulib(path)
    assert again.meta == first.meta
    assert again.projects == first.projects
    assert again.voters == first.voters
    a, b = first.profile, again.profile
    assert (a.project_ids, a.costs, a.budget, a.vote_type) == (b.project_ids, b.costs, b.budget, b.vote_type)
    assert np.array_equal(a.ballots.indptr, b.ballots.indptr)
    assert np.array_equal(a.ballots.items, b.ballots.items)
    if a.ballots.points is not None:
        assert np.array_equal(a.ballots.points, b.ballots.points)


def test_write_gzip_decimals_and_quotes(tmp_path: Path) -> None:
    """The writer quotes what needs quoting, writes exact decimals and compresses .gz paths."""
    meta = {"budget": Fraction("1000.5"), "vote_type": "cumulative", "description": 'a; "b"'}
    projects = [{"project_id": "1", "cost": Fraction(1001, 4), "name": "x;y"}, {"project_id": "2", "cost": 3}]
    votes = [{"voter_id": "a", "vote": ["2", "1"], "points": [Fraction(1, 2), 2]}]
    path = tmp_path / "out.pb.gz"
    text = write_pabulib(path, meta, projects, votes)
    assert '"a; ""b"""' in text and "250.25" in text and "0.5,2" in text
    election = read_pabulib(path)
    assert election.meta["num_votes"] == "1"
    assert election.profile.costs == (Fraction(1001, 4), Fraction(3))
    assert election.vote_rows()[0]["points"] == [Fraction(1, 2), Fraction(2)]
    with pytest.raises(ValueError):
        format_pabulib({"budget": 1}, [], [])
    with pytest.raises(ValueError):
        format_number(Fraction(1, 3))
