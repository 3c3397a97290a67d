"""Importing projects from CSV or XLSX files, and archived votes from pabulib ``.pb`` files.

Project files: a header row, then one project per row. Columns (English or German names, any order):
``title``/``Titel`` and ``cost``/``Kosten`` are required; ``id``, ``description``/``Beschreibung``,
``theme``/``Themenfeld``, ``district``/``Stadtbezirk`` and ``feasibility``/``Machbarkeit`` are optional.
Costs are euros (``12500``, ``12.500,00``), themes and districts are matched by name or slug. CSV files
must be UTF-8 (with or without byte-order mark); the separator (``;``, ``,`` or tab) is detected.

:func:`parse_projects` returns a :class:`ProjectImport` with every row and every problem, each naming its
row (the header is row 1). :func:`import_projects` writes nothing unless the whole file is correct.

:func:`import_pabulib` stores a pabulib election as an archived process: its projects, its ballots (under
fresh random identifiers, scope 0) and a published tally with the chosen rule, so the results of earlier
years and other cities can be shown and tallied again. An archived process never opens for voting and
has no audit-log entries for its ballots (it was not voted on this platform).
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from sqlmodel import Session

from app.database import utcnow
from app.i18n import gettext as _
from app.sanitize import render_markdown
from voting.admin_services import _next_position, _require_unfrozen, _slug, parse_euros
from voting.models import Ballot, BallotType, Process, Project, TallyRun

MAX_BYTES = 2 * 1024 * 1024  # base64 in the preview form stays below the request cap
MAX_ROWS = 2000
COLUMNS = {
    "id": "id",
    "nr": "id",
    "title": "title",
    "titel": "title",
    "description": "description",
    "beschreibung": "description",
    "cost": "cost",
    "kosten": "cost",
    "theme": "theme",
    "themenfeld": "theme",
    "district": "district",
    "stadtbezirk": "district",
    "feasibility": "feasibility",
    "feasibility_notes": "feasibility",
    "machbarkeit": "feasibility",
}
REQUIRED = ("title", "cost")


@dataclass
class ImportRow:
    row: int
    external_id: str
    title: str
    description: str = ""
    cost_cents: int | None = None
    theme_id: int | None = None
    district_id: int | None = None
    feasibility: str = ""
    theme_name: str = ""
    district_name: str = ""


@dataclass
class ImportProblem:
    row: int  # 0: the file as a whole
    message: str


@dataclass
class ProjectImport:
    rows: list[ImportRow] = field(default_factory=list)
    problems: list[ImportProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and bool(self.rows)


def _lookup(options: list[tuple[int, str, str]]) -> dict[str, tuple[int, str]]:
    out = {}
    for oid, name, slug in options:
        out[name.strip().casefold()] = (oid, name)
        out[slug.strip().casefold()] = (oid, name)
    return out


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _read_table(raw: bytes, filename: str) -> tuple[list[list[str]], list[ImportProblem]]:
    name = filename.lower()
    if name.endswith(".xlsx") or raw[:4] == b"PK\x03\x04":
        return _read_xlsx(raw)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return [], [
            ImportProblem(
                line,
                _("The file is not UTF-8 encoded (row %(row)s). Please save it as “CSV UTF-8”.", row=line),
            )
        ]
    if "\x00" in text:
        return [], [ImportProblem(0, _("The file is not a CSV or XLSX file."))]
    first = text.split("\n", 1)[0]
    delimiter = max((";", ",", "\t"), key=first.count)
    return [list(r) for r in csv.reader(io.StringIO(text), delimiter=delimiter)], []


def _read_xlsx(raw: bytes) -> tuple[list[list[str]], list[ImportProblem]]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError):
        return [], [ImportProblem(0, _("The file is not a valid XLSX workbook."))]
    try:
        ws = wb.worksheets[0]
        rows = []
        for n, values in enumerate(ws.iter_rows(values_only=True)):
            if n > MAX_ROWS + 1:
                break
            rows.append([_cell_text(v) for v in values])
        return rows, []
    finally:
        wb.close()


def parse_projects(
    raw: bytes,
    filename: str,
    *,
    themes: list[tuple[int, str, str]],
    districts: list[tuple[int, str, str]],
) -> ProjectImport:
    """Every row of a project file and every problem in it (nothing is written)."""
    result = ProjectImport()
    if len(raw) > MAX_BYTES:
        result.problems.append(ImportProblem(0, _("The file is larger than 2 MB.")))
        return result
    table, problems = _read_table(raw, filename)
    if problems:
        result.problems.extend(problems)
        return result
    table = [r for r in table if any(c.strip() for c in r)]
    if not table:
        result.problems.append(ImportProblem(0, _("The file is empty.")))
        return result
    header = [h.strip().casefold() for h in table[0]]
    unknown = [h for h in table[0] if h.strip().casefold() not in COLUMNS]
    mapped = [COLUMNS.get(h) for h in header]
    missing = [c for c in REQUIRED if c not in mapped]
    dupes = {c for c in mapped if c and mapped.count(c) > 1}
    if unknown or missing or dupes:
        parts = []
        if unknown:
            parts.append(_("unknown columns: %(cols)s", cols=", ".join(unknown)))
        if missing:
            parts.append(_("missing columns: %(cols)s", cols=", ".join(missing)))
        if dupes:
            parts.append(_("columns given twice: %(cols)s", cols=", ".join(sorted(dupes))))
        result.problems.append(
            ImportProblem(
                1,
                _(
                    "Row 1 (header): %(problems)s. Expected columns: %(expected)s.",
                    problems="; ".join(parts),
                    expected="id, title, description, cost, theme, district, feasibility",
                ),
            )
        )
        return result
    if len(table) - 1 > MAX_ROWS:
        result.problems.append(ImportProblem(0, _("At most %(n)s projects per file.", n=MAX_ROWS)))
        return result
    theme_map, district_map = _lookup(themes), _lookup(districts)
    seen: dict[str, int] = {}
    for n, cells in enumerate(table[1:], start=2):
        values = {col: (cells[k].strip() if k < len(cells) else "") for k, col in enumerate(mapped) if col}
        row = ImportRow(n, values.get("id", ""), values.get("title", ""))
        row.description = values.get("description", "")
        row.feasibility = values.get("feasibility", "")

        def problem(message: str, _n: int = n) -> None:
            result.problems.append(ImportProblem(_n, _("Row %(row)s: %(problem)s", row=_n, problem=message)))

        if len(cells) > len(mapped) and any(c.strip() for c in cells[len(mapped) :]):
            problem(_("more cells than columns"))
        if not row.title:
            problem(_("the title is missing"))
        elif len(row.title) > 200:
            problem(_("the title is longer than 200 characters"))
        cost = values.get("cost", "")
        if not cost:
            problem(_("the cost is missing"))
        else:
            try:
                cents = parse_euros(cost)
            except ValueError:
                problem(_("the cost “%(value)s” is not a number", value=cost[:40]))
            else:
                if cents <= 0:
                    problem(_("the cost must be greater than zero (%(value)s)", value=cost[:40]))
                else:
                    row.cost_cents = cents
        for key, lookup, label in (
            ("theme", theme_map, _("theme area")),
            ("district", district_map, _("district")),
        ):
            value = values.get(key, "")
            if value:
                found = lookup.get(value.casefold())
                if found is None:
                    problem(_("unknown %(what)s “%(value)s”", what=label, value=value[:60]))
                elif key == "theme":
                    row.theme_id, row.theme_name = found
                else:
                    row.district_id, row.district_name = found
        if row.external_id:
            if row.external_id in seen:
                problem(
                    _(
                        "the id “%(id)s” was already used in row %(other)s",
                        id=row.external_id[:40],
                        other=seen[row.external_id],
                    )
                )
            else:
                seen[row.external_id] = n
        result.rows.append(row)
    if not result.rows:
        result.problems.append(ImportProblem(0, _("The file has no projects.")))
    return result


def import_projects(db: Session, *, process: Process, parsed: ProjectImport) -> list[Project]:
    """Add every row as a project, or nothing at all if the file has any problem (or the list is frozen)."""
    _require_unfrozen(process)
    if not parsed.ok:
        raise ValueError("the import has problems")
    position = _next_position(db, process)
    created = []
    for k, row in enumerate(parsed.rows):
        project = Project(
            process_id=process.id,
            title=row.title,
            description_md=row.description,
            description_html=render_markdown(row.description),
            cost_cents=row.cost_cents,
            theme_id=row.theme_id,
            district_id=row.district_id,
            feasibility_notes=row.feasibility,
            position=position + k,
        )
        db.add(project)
        created.append(project)
    db.flush()
    return created


# --- pabulib archives ------------------------------------------------------------------------------------

PB_BALLOT_TYPE = {
    "approval": BallotType.APPROVAL,
    "choose-1": BallotType.APPROVAL,
    "cumulative": BallotType.CUMULATIVE,
    "ordinal": BallotType.RANKED,
}


def import_pabulib(
    db: Session, *, raw: bytes, rule: str | None = None, user_id: int | None = None
) -> Process:
    """Store a pabulib election as an archived, published process; raises PabulibError or ValueError."""
    import secrets

    from voting.pabulib import read_pabulib
    from voting.rules.registry import RULE_VOTE_TYPES
    from voting.tally import tally_scope

    election = read_pabulib(raw)
    ballot_type = PB_BALLOT_TYPE.get(election.vote_type)
    if ballot_type is None:
        raise ValueError(f"vote type {election.vote_type!r} cannot be stored")
    meta = election.meta
    budget_cents = int(Fraction(election.profile.budget) * 100)
    title = (
        meta.get("description") or f"{meta.get('unit', '')} {meta.get('instance', '')}".strip() or "pabulib"
    )[:200]
    rule = rule or ("mes" if election.vote_type in RULE_VOTE_TYPES["mes"] else "greedy")
    if election.vote_type not in RULE_VOTE_TYPES.get(rule, ()):
        raise ValueError(f"rule {rule} does not apply to {election.vote_type} ballots")
    now = utcnow()
    profile = election.profile
    process = Process(
        slug=_slug(title),
        title=title,
        description_md=_(
            "Archived vote imported from a pabulib file (%(country)s, %(unit)s).",
            country=meta.get("country", "?"),
            unit=meta.get("unit", "?"),
        ),
        budget_cents=budget_cents,
        ballot_type=ballot_type.value,
        rule=rule,
        min_choices=0,
        frozen_at=now,
        voting_opened_at=now,
        voting_closed_at=now,
        created_by_id=user_id,
    )
    if ballot_type == BallotType.CUMULATIVE:
        process.points_total = int(meta.get("max_sum_points", "0").split(".")[0] or 0) or None
        process.points_per_project = int(meta.get("max_points", "0").split(".")[0] or 0) or None
    process.description_html = render_markdown(process.description_md)
    db.add(process)
    db.flush()
    ids = {}
    for k, row in enumerate(election.projects):
        cost = Fraction(profile.costs[k]) * 100
        project = Project(
            process_id=process.id,
            title=(row.get("name") or row.get("project_id") or "?")[:200],
            cost_cents=int(cost) if cost > 0 else None,
            position=k,
        )
        db.add(project)
        db.flush()
        ids[k] = project.id
    ballots = profile.ballots
    batch = []
    for v in range(ballots.voters):
        lo, hi = int(ballots.indptr[v]), int(ballots.indptr[v + 1])
        items = [ids[int(i)] for i in ballots.items[lo:hi]]
        if ballots.points is not None:
            scale = ballots.points_scale
            selection: Any = {
                str(pid): int(Fraction(int(p), scale))
                for pid, p in zip(items, ballots.points[lo:hi], strict=True)
            }
        else:
            selection = items
        batch.append(
            {
                "process_id": process.id,
                "scope": 0,
                "ballot_uid": secrets.token_hex(16),
                "selection": json.dumps(selection, separators=(",", ":")),
                "version": 1,
                "is_paper": False,
                "cast_at": now,
                "updated_at": now,
            }
        )
        if len(batch) >= 5000:
            db.execute(Ballot.__table__.insert(), batch)
            batch = []
    if batch:
        db.execute(Ballot.__table__.insert(), batch)
    outcome = tally_scope(db, process, 0, rule=rule)
    db.add(
        TallyRun(
            process_id=process.id,
            scope=0,
            rule=rule,
            status="done",
            progress=100,
            result=outcome.result_json(),
            ballots=outcome.ballots,
            finished_at=now,
            published_at=now,
        )
    )
    process.results_published_at = now
    db.flush()
    return process
