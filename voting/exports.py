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
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any
from xml.sax.saxutils import escape

from sqlalchemy import Engine, and_, func, select
from sqlmodel import Session

from app.database import new_session
from voting import lifecycle
from voting.lifecycle import VOTE_TYPE
from voting.models import Ballot, BallotType, Process
from voting.pabulib import format_number
from voting.results import ScopeResult, process_results

BOM = "\ufeff"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
BATCH = 2000
Progress = Callable[[int, int], None]


def safe_text(value: str) -> str:
    """Neutralise spreadsheet formulas: a text cell starting with = + - @ (or tab/CR) gets a leading '."""
    return "'" + value if value.startswith(FORMULA_START) else value


def csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Fraction | float):
        return format(float(value), ".6g")
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return safe_text(str(value))


class _Line:
    def __init__(self) -> None:
        self.buf = io.StringIO()

    def take(self) -> str:
        text = self.buf.getvalue()
        self.buf.seek(0)
        self.buf.truncate()
        return text


def csv_stream(
    header: Sequence[str], rows: Iterable[Sequence[Any]], *, delimiter: str = ","
) -> Iterator[bytes]:
    """CSV bytes, UTF-8 with BOM, written in chunks of rows."""
    line = _Line()
    writer = csv.writer(line.buf, delimiter=delimiter, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow([safe_text(h) for h in header])
    yield (BOM + line.take()).encode("utf-8")
    n = 0
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
        n += 1
        if n % 500 == 0:
            yield line.take().encode("utf-8")
    rest = line.take()
    if rest:
        yield rest.encode("utf-8")


_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
EXCEL_EPOCH = dt.datetime(1899, 12, 30)
_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
_STYLES = (
    f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><styleSheet xmlns="{_NS}">'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/>'
    '</fill></fills><borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="3"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="22" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)


def _col(n: int) -> str:
    out = ""
    n += 1
    while n:
        n, rem = divmod(n - 1, 26)
        out = chr(65 + rem) + out
    return out


def _xml_text(value: str) -> str:
    return escape(_XML_BAD.sub("", value), {'"': "&quot;"})


def _xlsx_cell(ref: str, value: Any, style: int = 0) -> str:
    s = f' s="{style}"' if style else ""
    if value is None:
        return ""
    if isinstance(value, bool):
        return f'<c r="{ref}" t="b"{s}><v>{int(value)}</v></c>'
    if isinstance(value, int):
        return f'<c r="{ref}"{s}><v>{value}</v></c>'
    if isinstance(value, Fraction | float):
        return f'<c r="{ref}"{s}><v>{float(value)!r}</v></c>'
    if isinstance(value, dt.datetime):
        naive = value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
        serial = (naive - EXCEL_EPOCH).total_seconds() / 86400
        return f'<c r="{ref}" s="2"><v>{serial!r}</v></c>'
    text = _xml_text(safe_text(str(value)))
    return f'<c r="{ref}" t="inlineStr"{s}><is><t xml:space="preserve">{text}</t></is></c>'


def xlsx_stream(sheets: Sequence[tuple[str, Sequence[str], Iterable[Sequence[Any]]]]) -> Iterator[bytes]:
    """An XLSX workbook written row by row into a temporary zip file (typed cells: numbers, booleans,
    dates; inline strings; a bold header row), then sent in chunks. openpyxl's write-only mode needs
    about 20 s for 200,000 rows; this writer produces the same cells in a fraction of that."""
    with tempfile.TemporaryFile() as fh:
        with zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED, compresslevel=5) as zf:
            names = []
            for k, (title, header, rows) in enumerate(sheets, start=1):
                names.append(_xml_text(title[:31]))
                with zf.open(f"xl/worksheets/sheet{k}.xml", "w", force_zip64=True) as raw:
                    out = io.TextIOWrapper(raw, encoding="utf-8", newline="")
                    out.write(
                        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="{_NS}">'
                    )
                    out.write('<sheetData><row r="1">')
                    out.write("".join(_xlsx_cell(f"{_col(c)}1", str(h), 1) for c, h in enumerate(header)))
                    out.write("</row>")
                    cols = [_col(c) for c in range(len(header))]
                    for r, row in enumerate(rows, start=2):
                        cells = "".join(_xlsx_cell(f"{cols[c]}{r}", v) for c, v in enumerate(row))
                        out.write(f'<row r="{r}">{cells}</row>')
                    out.write("</sheetData></worksheet>")
                    out.flush()
                    out.detach()
            sheets_xml = "".join(
                f'<sheet name="{n}" sheetId="{k}" r:id="rId{k}"/>' for k, n in enumerate(names, start=1)
            )
            rels = "".join(
                f'<Relationship Id="rId{k}" Type="{_REL}/worksheet" Target="worksheets/sheet{k}.xml"/>'
                for k in range(1, len(names) + 1)
            )
            overrides = "".join(
                f'<Override PartName="/xl/worksheets/sheet{k}.xml" ContentType="application/'
                'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
                for k in range(1, len(names) + 1)
            )
            head = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            zf.writestr(
                "[Content_Types].xml",
                f'{head}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                '<Default Extension="xml" ContentType="application/xml"/>'
                '<Override PartName="/xl/workbook.xml" ContentType="application/'
                'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
                '<Override PartName="/xl/styles.xml" ContentType="application/'
                f'vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>{overrides}</Types>',
            )
            zf.writestr(
                "_rels/.rels",
                f'{head}<Relationships xmlns="{_PKG}"><Relationship Id="rId1" '
                f'Type="{_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
            )
            zf.writestr(
                "xl/workbook.xml",
                f'{head}<workbook xmlns="{_NS}" xmlns:r="{_REL}"><sheets>{sheets_xml}</sheets></workbook>',
            )
            n = len(names) + 1
            zf.writestr(
                "xl/_rels/workbook.xml.rels",
                f'{head}<Relationships xmlns="{_PKG}">{rels}<Relationship Id="rId{n}" '
                f'Type="{_REL}/styles" Target="styles.xml"/></Relationships>',
            )
            zf.writestr("xl/styles.xml", _STYLES)
        fh.seek(0)
        while chunk := fh.read(64 * 1024):
            yield chunk


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


@dataclass
class Lookups:
    themes: dict[int, str]
    districts: dict[int, str]


def lookups(db: Session) -> Lookups:
    from proposals import services as proposal_services

    return Lookups(
        {t.id: t.name_de for t in proposal_services.themes(db, include_inactive=True) if t.id is not None},
        lifecycle.district_names(db),
    )


def _euros(cents: int | None) -> Fraction | None:
    return None if cents is None else Fraction(cents, 100)


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
            cost = _euros(project.cost_cents)
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


# --- proposals and comments ------------------------------------------------------------------------------


@dataclass
class Filters:
    theme_id: int | None = None
    district_id: int | None = None
    status: str | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None  # inclusive


def _day_bounds(filters: Filters) -> tuple[dt.datetime | None, dt.datetime | None]:
    from app.i18n import BERLIN

    start = end = None
    if filters.date_from:
        start = dt.datetime.combine(filters.date_from, dt.time(), BERLIN).astimezone(dt.UTC)
    if filters.date_to:
        end = dt.datetime.combine(filters.date_to + dt.timedelta(days=1), dt.time(), BERLIN).astimezone(
            dt.UTC
        )
    return start, end


def _content_filters(filters: Filters, date_column: Any) -> list[Any]:
    """The WHERE conditions both content exports share: the proposal's theme, district and status, and
    ``date_column`` within the (Berlin) days ``date_from``..``date_to``."""
    from proposals.models import Proposal

    where: list[Any] = []
    if filters.theme_id:
        where.append(Proposal.theme_id == filters.theme_id)
    if filters.district_id:
        where.append(Proposal.district_id == filters.district_id)
    if filters.status:
        where.append(Proposal.status == filters.status)
    start, end = _day_bounds(filters)
    if start:
        where.append(date_column >= start)
    if end:
        where.append(date_column < end)
    return where


PROPOSAL_HEADER = (
    "id",
    "title",
    "summary",
    "status",
    "theme",
    "district",
    "cost_eur",
    "supports",
    "comments",
    "published_at",
    "decided_at",
    "status_reason",
)


def proposal_rows(
    engine: Engine, filters: Filters, on_progress: Progress | None = None
) -> Iterator[list[Any]]:
    """Public proposals (never drafts or hidden ones), filtered; no author data."""
    from proposals.models import Proposal
    from proposals.visibility import public_proposal

    with new_session(engine) as db:
        names = lookups(db)
        where = [public_proposal(), *_content_filters(filters, Proposal.published_at)]
        stmt = select(Proposal).where(*where).order_by(Proposal.id).execution_options(yield_per=BATCH)
        for n, p in enumerate(db.execute(stmt).scalars(), start=1):
            yield [
                p.id,
                p.title,
                p.summary,
                p.status,
                names.themes.get(p.theme_id, ""),
                names.districts.get(p.district_id or 0, ""),
                _euros(p.cost_cents),
                p.support_count,
                p.comment_count,
                p.published_at,
                p.decided_at,
                p.status_reason,
            ]
            if on_progress is not None and n % BATCH == 0:
                on_progress(n, 0)
            if n % BATCH == 0:
                db.expunge_all()


COMMENT_HEADER = (
    "id",
    "proposal_id",
    "proposal_title",
    "parent_id",
    "created_at",
    "edited_at",
    "deleted",
    "score",
    "text",
)


def comment_rows(
    engine: Engine, filters: Filters, on_progress: Progress | None = None
) -> Iterator[list[Any]]:
    """Visible comments on public proposals, filtered by the proposal's theme/district/status and the
    comment's date; deleted comments without text; no author data."""
    from proposals.models import Comment, Proposal
    from proposals.visibility import public_comment, public_proposal

    with new_session(engine) as db:
        where = [public_proposal(), public_comment(), *_content_filters(filters, Comment.created_at)]
        stmt = (
            select(
                Comment.id,
                Comment.proposal_id,
                Proposal.title,
                Comment.parent_id,
                Comment.created_at,
                Comment.edited_at,
                Comment.deleted_at,
                Comment.score,
                Comment.body_md,
            )
            .join(Proposal, Proposal.id == Comment.proposal_id)
            .where(*where)
            .order_by(Comment.id)
            .execution_options(yield_per=BATCH)
        )
        for n, row in enumerate(db.execute(stmt), start=1):
            cid, pid, title, parent, created, edited, deleted, score, body = row
            yield [
                cid,
                pid,
                title,
                parent,
                created,
                edited,
                deleted is not None,
                score,
                "" if deleted else body,
            ]
            if on_progress is not None and n % BATCH == 0:
                on_progress(n, 0)


def filename(process: Process, ext: str) -> str:
    return f"process-{process.id}-results.{ext}"
