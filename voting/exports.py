"""Exports that open in Excel and LibreOffice, and the research standard (pabulib).

Everything streams: rows come from generators reading the database in batches (``yield_per``), CSV is
written line by line, XLSX through openpyxl's write-only mode into a temporary file that is then sent in
chunks, and ``.pb`` votes line by line. So 100,000 ballots or 200,000 comments never sit in memory
(bench/exports.py measures it). Generators that outlive the request open their own database session.

- CSV: UTF-8 with a byte-order mark (Excel detects the encoding), ``,`` or ``;`` (German Excel) as
  separator. Text cells starting with ``= + - @`` (or tab/CR) get a leading apostrophe so spreadsheet
  programs never evaluate them as formulas (CSV/formula injection); numbers stay numbers.
- XLSX: typed cells (numbers, dates, booleans) and a bold header row; text cells are escaped the same way.
  Written by a small streaming writer (openpyxl reads them back in the tests; its write-only mode was too
  slow for 200,000 rows).
- JSON: the process, its ballots' budgets and results (money in cents).
- ``.pb``: META, PROJECTS and VOTES of one ballot (scope); voters are numbered 1..n in the order of their
  random ballot identifiers, so neither accounts nor casting order can be read from it.

Proposals and comments: only what the public may see (``proposals.visibility``), without authors' names
or e-mail addresses; deleted comments export without text.

The modules: the CSV and XLSX writers are in voting/export_formats.py, the proposal and comment rows in
voting/content_exports.py; this one has the results, projects and pabulib votes (and re-exports the rest).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

from sqlalchemy import Engine, and_, func, select
from sqlmodel import Session

from app.database import new_session
from voting import lifecycle
from voting.content_exports import (  # noqa: F401 (re-exported: routes, CLI and tests use exports.*)
    COMMENT_HEADER,
    PROPOSAL_HEADER,
    Filters,
    Lookups,
    comment_rows,
    lookups,
    proposal_rows,
)
from voting.export_formats import (  # noqa: F401 (re-exported)
    BATCH,
    BOM,
    Progress,
    csv_cell,
    csv_stream,
    euros,
    safe_text,
    xlsx_stream,
)
from voting.lifecycle import VOTE_TYPE
from voting.models import Ballot, BallotType, Process
from voting.pabulib import format_number
from voting.results import ScopeResult, process_results

# --- results and projects --------------------------------------------------------------------------------

RESULT_HEADER = (
    "ballot",
    "project_id",
    "title",
    "theme",
    "district",
    "cost_eur",
    "votes",
    "funded",
    "position",
    "share_of_budget",
    "share_of_voters",
    "feasibility_notes",
)


def result_rows(db: Session, process: Process, *, staff: bool) -> list[list[Any]]:
    """One row per project of every ballot: with its votes and outcome where a tally exists."""
    names = lookups(db)
    results = {r.scope.id: r for r in process_results(db, process, staff=staff)}
    rows = []
    for s in lifecycle.scopes(db, process):
        label = "city" if s.id == 0 else s.district_name
        res: ScopeResult | None = results.get(s.id)
        figures = {p.id: p for p in res.projects} if res else {}
        for project in s.projects:
            fig = figures.get(project.id)
            cost = euros(project.cost_cents)
            rows.append(
                [
                    label,
                    project.id,
                    project.title,
                    names.themes.get(project.theme_id or 0, ""),
                    names.districts.get(project.district_id or 0, ""),
                    cost,
                    (int(fig.score) if fig.score.denominator == 1 else fig.score) if fig else None,
                    fig.funded if fig else None,
                    fig.position if fig else None,
                    fig.budget_share if fig else (Fraction(project.cost_cents or 0, s.budget_cents)),
                    fig.vote_share if fig else None,
                    project.feasibility_notes,
                ]
            )
    return rows


def _money_json(cents: int | None) -> int | None:
    return cents


def results_json(db: Session, process: Process, *, staff: bool) -> dict[str, Any]:
    """The process, its ballots, every project and (where tallied) its result; money in cents."""
    names = lookups(db)
    results = {r.scope.id: r for r in process_results(db, process, staff=staff)}
    ballots_out = []
    for s in lifecycle.scopes(db, process):
        res = results.get(s.id)
        figures = {p.id: p for p in res.projects} if res else {}
        projects = []
        for project in s.projects:
            fig = figures.get(project.id)
            entry: dict[str, Any] = {
                "id": project.id,
                "title": project.title,
                "cost_cents": project.cost_cents,
                "theme": names.themes.get(project.theme_id or 0),
                "district": names.districts.get(project.district_id or 0),
                "proposal_id": project.proposal_id,
            }
            if fig is not None:
                entry.update(
                    votes=int(fig.score) if fig.score.denominator == 1 else str(fig.score),
                    funded=fig.funded,
                    position=fig.position,
                    reason=fig.reason,
                )
            projects.append(entry)
        ballots_out.append(
            {
                "scope": s.id,
                "district": s.district_name or None,
                "budget_cents": s.budget_cents,
                "ballots": res.ballots if res else None,
                "rule": res.rule if res else process.rule,
                "selected": [p.id for p in res.funded] if res else None,
                "cost_cents": res.cost_cents if res else None,
                "published": res.published if res else False,
                "projects": projects,
            }
        )
    return {
        "process": {
            "id": process.id,
            "title": process.title,
            "budget_cents": process.budget_cents,
            "ballot_type": process.ballot_type,
            "rule": process.rule,
            "voting_starts_at": _iso(process.voting_starts_at),
            "voting_ends_at": _iso(process.voting_ends_at),
            "results_published_at": _iso(process.results_published_at),
        },
        "ballots": ballots_out,
    }


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def json_bytes(data: dict[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False).encode("utf-8") + b"\n"


# --- pabulib ---------------------------------------------------------------------------------------------


def _pb_cell(value: str) -> str:
    if value == "":
        return ""
    out = io.StringIO()
    csv.writer(out, delimiter=";", lineterminator="").writerow([value])
    return out.getvalue()


def pb_stream(
    engine: Engine, *, process_id: int, scope_id: int = 0, on_progress: Progress | None = None
) -> Iterator[str]:
    """A pabulib file of one ballot, votes streamed from the database (anonymised voter numbers)."""
    with new_session(engine) as db:
        process = db.get(Process, process_id)
        assert process is not None
        scope = lifecycle.get_scope(db, process, scope_id)
        if scope is None:
            raise LookupError(scope_id)
        vote_type = VOTE_TYPE[BallotType(process.ballot_type)]
        where = and_(Ballot.process_id == process.id, Ballot.scope == scope.id)
        total = int(db.execute(select(func.count()).select_from(Ballot).where(where)).scalar_one())
        names = lookups(db)
        meta: dict[str, Any] = {
            "description": process.title,
            "country": "Germany",
            "unit": process.slug,
            "instance": (process.voting_starts_at or process.created_at).strftime("%Y"),
            "num_projects": len(scope.projects),
            "num_votes": total,
            "budget": format_number(Fraction(scope.budget_cents, 100)),
            "vote_type": vote_type,
            "rule": process.rule,
            "date_begin": (
                process.voting_opened_at or process.voting_starts_at or process.created_at
            ).strftime("%d.%m.%Y"),
            "date_end": (process.voting_closed_at or process.voting_ends_at or process.created_at).strftime(
                "%d.%m.%Y"
            ),
        }
        if scope.district_name:
            meta["district"] = scope.district_name
        if process.min_choices:
            meta["min_length"] = process.min_choices
        if process.max_choices:
            meta["max_length"] = process.max_choices
        if vote_type == "cumulative":
            meta["max_sum_points"] = process.points_total or 0
            meta["max_points"] = process.points_per_project or 0
        yield "META\nkey;value\n"
        for key, value in meta.items():
            yield f"{_pb_cell(key)};{_pb_cell(str(value))}\n"
        yield "PROJECTS\nproject_id;cost;name;category;district\n"
        for p in scope.projects:
            cost = format_number(Fraction(p.cost_cents or 0, 100))
            fields = [
                str(p.id),
                cost,
                p.title,
                names.themes.get(p.theme_id or 0, ""),
                names.districts.get(p.district_id or 0, ""),
            ]
            yield ";".join(_pb_cell(f) for f in fields) + "\n"
        yield "VOTES\nvoter_id;vote" + (";points" if vote_type == "cumulative" else "") + "\n"
        stmt = (
            select(Ballot.selection)
            .where(where)
            .order_by(Ballot.ballot_uid)
            .execution_options(yield_per=BATCH)
        )
        chunk: list[str] = []
        for n, (raw,) in enumerate(db.execute(stmt), start=1):
            selection = json.loads(raw)
            if isinstance(selection, dict):
                items = sorted(selection.items(), key=lambda kv: int(kv[0]))
                line = f"{n};{','.join(k for k, _v in items)};{','.join(str(v) for _k, v in items)}"
            else:
                line = f"{n};{','.join(str(x) for x in selection)}"
            chunk.append(line)
            if len(chunk) >= BATCH:
                yield "\n".join(chunk) + "\n"
                chunk = []
                if on_progress is not None:
                    on_progress(n, total)
        if chunk:
            yield "\n".join(chunk) + "\n"
        if on_progress is not None:
            on_progress(total, total)


def filename(process: Process, ext: str) -> str:
    return f"process-{process.id}-results.{ext}"
