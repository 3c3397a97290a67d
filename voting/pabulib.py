"""Read and write pabulib ``.pb`` files (the format of pabulib.org, the participatory-budgeting library).

A file has three sections, in this order, each a line with its name and a header line of column names:
``META`` (``key;value`` rows: at least ``budget`` and ``vote_type``), ``PROJECTS`` (at least ``project_id``
and ``cost``) and ``VOTES`` (at least ``voter_id`` and ``vote``, plus ``points`` for cumulative and scoring
ballots). Fields are separated by ``;`` and may be quoted (a quoted field may contain ``;``, line breaks and
doubled quotes ``""``). Files are UTF-8 (a byte-order mark is ignored); gzip-compressed files are accepted
when they start with the gzip magic bytes or their name ends in ``.gz``. Amounts and points are exact
decimals (``1000.5``; a decimal comma is accepted as pabutools does). Values are stripped of surrounding
blanks. Anything malformed raises :class:`PabulibError` naming the line.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import IO

import numpy as np

from voting.rules.profile import POINT_TYPES, VOTE_TYPES, Ballots, Profile, to_fraction

SECTIONS = ("meta", "projects", "votes")
GZIP_MAGIC = b"\x1f\x8b"


class PabulibError(ValueError):
    """A malformed pabulib file; ``line`` is the 1-based line number where the problem was found."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message, line)
        self.message = message
        self.line = line

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line is not None else self.message


@dataclass
class PabulibElection:
    """A parsed file: raw META and PROJECTS values, the other VOTES columns, and the election."""

    meta: dict[str, str]
    project_columns: list[str]
    projects: list[dict[str, str]]
    vote_columns: list[str]
    voters: dict[str, list[str]]  # VOTES columns other than vote/points, column by column
    profile: Profile
    meta_lines: dict[str, int] = field(default_factory=dict)

    @property
    def vote_type(self) -> str:
        return self.profile.vote_type

    def vote_rows(self) -> list[dict[str, object]]:
        """One dict per voter, keys in the file's column order: the raw columns plus ``vote`` (project ids)
        and, for point ballots, ``points``."""
        prof = self.profile
        ballots = prof.ballots
        ids = prof.project_ids
        rows: list[dict[str, object]] = []
        for v in range(ballots.voters):
            lo, hi = int(ballots.indptr[v]), int(ballots.indptr[v + 1])
            row: dict[str, object] = {}
            for col in self.vote_columns:
                if col == "vote":
                    row[col] = [ids[k] for k in ballots.items[lo:hi].tolist()]
                elif col == "points" and ballots.points is not None:
                    row[col] = [Fraction(int(x), ballots.points_scale) for x in ballots.points[lo:hi]]
                else:
                    row[col] = self.voters[col][v]
            rows.append(row)
        return rows


def read_pabulib(source: str | os.PathLike[str] | bytes | IO[bytes]) -> PabulibElection:
    """Parse a pabulib file given by path, raw bytes or a binary file object."""
    name = ""
    if isinstance(source, bytes):
        raw = source
    elif isinstance(source, str | os.PathLike):
        name = os.fspath(source)
        try:
            with open(name, "rb") as fh:
                raw = fh.read()
        except OSError as exc:
            raise PabulibError(f"cannot read {name}: {exc.strerror or exc}") from exc
    else:
        raw = source.read()
        name = str(getattr(source, "name", ""))
    if raw.startswith(GZIP_MAGIC) or name.endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise PabulibError(f"not a valid gzip file: {exc}") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise PabulibError("not valid UTF-8", line) from exc
    return parse_pabulib(text)


def _number(text: str, what: str, line: int) -> Fraction:
    try:
        value = to_fraction(text)
    except ValueError:
        raise PabulibError(f"{what} is not a number: {text!r}", line) from None
    if value < 0:
        raise PabulibError(f"{what} must not be negative: {text!r}", line)
    return value


class _Reader:
    def __init__(self, text: str) -> None:
        self.rows = csv.reader(
            io.StringIO(text, newline=""), delimiter=";", quotechar='"', doublequote=True, strict=True
        )

    def __iter__(self) -> _Reader:
        return self

    def __next__(self) -> tuple[int, list[str]]:
        while True:
            try:
                row = next(self.rows)
            except csv.Error as exc:
                raise PabulibError(f"bad quoting: {exc}", self.rows.line_num) from None
            if row and not (len(row) == 1 and not row[0].strip()):
                return self.rows.line_num, [x.strip() for x in row]

    @property
    def line(self) -> int:
        return self.rows.line_num


def _header(reader: _Reader, section: str, required: Sequence[str]) -> list[str]:
    try:
        line, header = next(reader)
    except StopIteration:
        raise PabulibError(f"{section.upper()} section has no header line", reader.line) from None
    if len(set(header)) != len(header):
        raise PabulibError(f"{section.upper()} header repeats a column", line)
    for col in required:
        if col not in header:
            raise PabulibError(f"{section.upper()} header lacks the column {col!r}", line)
    return header


def _section_name(row: list[str]) -> str | None:
    name = row[0].lower()
    if name in SECTIONS and all(not x for x in row[1:]):
        return name
    return None


def parse_pabulib(text: str) -> PabulibElection:
    """Parse the text of a pabulib file."""
    reader = _Reader(text)
    meta: dict[str, str] = {}
    meta_lines: dict[str, int] = {}
    projects: list[dict[str, str]] = []
    index: dict[str, int] = {}
    costs: list[Fraction] = []
    seen: list[str] = []
    header: list[str] = []
    project_columns: list[str] = []
    vote_type = ""
    items: list[int] = []
    indptr: list[int] = [0]
    points: list[Fraction] = []
    voters: dict[str, list[str]] = {}
    voter_ids: set[str] = set()
    for line, row in reader:
        name = _section_name(row)
        if name is not None:
            expected = SECTIONS[len(seen)] if len(seen) < 3 else None
            if name != expected:
                raise PabulibError(
                    f"section {name.upper()} out of place (expected "
                    f"{expected.upper() if expected else 'end of file'})",
                    line,
                )
            seen.append(name)
            if name == "meta":
                header = _header(reader, name, ())
                if len(header) != 2:
                    raise PabulibError("META header must have two columns (key;value)", reader.line)
            elif name == "projects":
                vote_type = _check_meta(meta, meta_lines, line)
                header = project_columns = _header(reader, name, ("project_id", "cost"))
            else:
                required = ("voter_id", "vote") + (("points",) if vote_type in POINT_TYPES else ())
                header = _header(reader, name, required)
                own = ("vote", "points") if vote_type in POINT_TYPES else ("vote",)
                voters = {col: [] for col in header if col not in own}
            continue
        if not seen:
            raise PabulibError("the file must start with a META section", line)
        if len(row) != len(header):
            raise PabulibError(f"expected {len(header)} fields, found {len(row)}", line)
        section = seen[-1]
        if section == "meta":
            if row[0] in meta:
                raise PabulibError(f"META key {row[0]!r} given twice", line)
            meta[row[0]] = row[1]
            meta_lines[row[0]] = line
        elif section == "projects":
            entry = dict(zip(header, row, strict=True))
            pid = entry["project_id"]
            if not pid:
                raise PabulibError("empty project_id", line)
            if pid in index:
                raise PabulibError(f"project {pid!r} listed twice", line)
            index[pid] = len(projects)
            costs.append(_number(entry["cost"], f"cost of project {pid!r}", line))
            projects.append(entry)
        else:
            entry = dict(zip(header, row, strict=True))
            _vote(entry, index, vote_type, line, items, points)
            if entry["voter_id"] in voter_ids:
                raise PabulibError(f"voter {entry['voter_id']!r} listed twice", line)
            voter_ids.add(entry["voter_id"])
            indptr.append(len(items))
            for col, values in voters.items():
                values.append(entry[col])
    if len(seen) < 3:
        missing = ", ".join(s.upper() for s in SECTIONS[len(seen) :])
        raise PabulibError(f"missing section(s): {missing}", reader.line)
    ballots = _ballots(indptr, items, points if vote_type in POINT_TYPES else None)
    ids = tuple(p["project_id"] for p in projects)
    profile = Profile(
        ids,
        tuple(costs),
        _number(meta["budget"], "budget", meta_lines["budget"]),
        ballots,
        vote_type,
        dict(meta),
    )
    vote_columns = header
    return PabulibElection(meta, project_columns, projects, vote_columns, voters, profile, meta_lines)


def _check_meta(meta: dict[str, str], lines: dict[str, int], line: int) -> str:
    for key in ("budget", "vote_type"):
        if key not in meta:
            raise PabulibError(f"META lacks the key {key!r}", line)
    _number(meta["budget"], "budget", lines["budget"])
    vote_type = meta["vote_type"].lower()
    if vote_type not in VOTE_TYPES:
        raise PabulibError(f"unknown vote_type {meta['vote_type']!r}", lines["vote_type"])
    return vote_type


def _vote(
    entry: dict[str, str],
    index: dict[str, int],
    vote_type: str,
    line: int,
    items: list[int],
    points: list[Fraction],
) -> None:
    text = entry["vote"]
    names = [x.strip() for x in text.split(",")] if text else []
    ballot: list[int] = []
    for pid in names:
        k = index.get(pid)
        if k is None:
            raise PabulibError(f"vote names an unknown project {pid!r}", line)
        ballot.append(k)
    if len(set(ballot)) != len(ballot):
        raise PabulibError("vote names the same project twice", line)
    if vote_type in POINT_TYPES:
        raw = entry["points"]
        values = [x.strip() for x in raw.split(",")] if raw else []
        if len(values) != len(ballot):
            raise PabulibError(f"{len(ballot)} projects in vote but {len(values)} points", line)
        points.extend(_number(x, "points", line) for x in values)
    items.extend(ballot)


def _ballots(indptr: list[int], items: list[int], points: list[Fraction] | None) -> Ballots:
    ptr = np.asarray(indptr, dtype=np.int64)
    arr = np.asarray(items, dtype=np.int32)
    if points is None:
        return Ballots(ptr, arr)
    scale = math.lcm(1, *{x.denominator for x in points})
    return Ballots(ptr, arr, np.asarray([int(x * scale) for x in points], dtype=np.int64), scale)


# ----- writing ---------------------------------------------------------------------------------------------


def format_number(value: object) -> str:
    """Exact decimal text of a number (ints stay ints); a Fraction must have a finite decimal expansion."""
    if isinstance(value, str):
        return value
    x = to_fraction(value)  # type: ignore[arg-type]
    if x.denominator == 1:
        return str(x.numerator)
    den, twos, fives = x.denominator, 0, 0
    while den % 2 == 0:
        den, twos = den // 2, twos + 1
    while den % 5 == 0:
        den, fives = den // 5, fives + 1
    if den != 1:
        raise ValueError(f"{x} has no finite decimal expansion")
    digits = max(twos, fives)
    scaled = abs(x.numerator) * 10**digits // x.denominator
    sign = "-" if x < 0 else ""
    return f"{sign}{scaled // 10**digits}.{scaled % 10**digits:0{digits}d}"


def _cell(value: object) -> str:
    if value is None:
        return "None"
    if isinstance(value, str):
        return value
    if isinstance(value, int | Fraction | float):
        return format_number(value)
    if isinstance(value, Iterable):
        return ",".join(_cell(v) for v in value)
    return str(value)


def format_pabulib(
    meta: Mapping[str, object],
    projects: Sequence[Mapping[str, object]],
    votes: Iterable[Mapping[str, object]],
) -> str:
    """The text of a pabulib file. ``projects`` rows need ``project_id`` and ``cost``; ``votes`` rows need
    ``voter_id`` and ``vote`` (a sequence of project ids, best first for ordinal ballots) and, for point
    ballots, ``points``. Columns are the first row's keys, in order (missing required ones first)."""
    meta = dict(meta)
    for key in ("budget", "vote_type"):
        if key not in meta:
            raise ValueError(f"meta needs {key!r}")
    vote_rows = list(votes)
    meta.setdefault("num_projects", len(projects))
    meta.setdefault("num_votes", len(vote_rows))
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", quotechar='"', lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(["META"])
    writer.writerow(["key", "value"])
    for key, value in meta.items():
        writer.writerow([key, _cell(value)])
    for label, rows, first in (
        ("PROJECTS", projects, ("project_id", "cost")),
        ("VOTES", vote_rows, ("voter_id", "vote")),
    ):
        columns = list(rows[0]) if rows else []
        columns = [k for k in first if k not in columns] + columns
        if label == "VOTES" and str(meta["vote_type"]) in POINT_TYPES and "points" not in columns:
            columns.append("points")
        writer.writerow([label])
        writer.writerow(columns)
        for row in rows:
            if label == "PROJECTS" and "," in str(row["project_id"]):
                raise ValueError(f"project id {row['project_id']!r} contains a comma")
            writer.writerow([_cell(row.get(col)) for col in columns])
    return out.getvalue()


def write_pabulib(
    dest: str | os.PathLike[str] | IO[str],
    meta: Mapping[str, object],
    projects: Sequence[Mapping[str, object]],
    votes: Iterable[Mapping[str, object]],
) -> str:
    """Write a pabulib file (gzip-compressed if the path ends in ``.gz``) and return its text."""
    text = format_pabulib(meta, projects, votes)
    if isinstance(dest, str | os.PathLike):
        path = os.fspath(dest)
        data = text.encode("utf-8")
        with open(path, "wb") as fh:
            fh.write(gzip.compress(data, mtime=0) if path.endswith(".gz") else data)
    else:
        dest.write(text)
    return text


def election_rows(
    election: PabulibElection,
) -> tuple[dict[str, str], list[dict[str, object]], list[dict[str, object]]]:
    """(meta, projects, votes) of a parsed file, ready for :func:`write_pabulib`."""
    return dict(election.meta), [dict(p) for p in election.projects], election.vote_rows()
