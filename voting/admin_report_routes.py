"""Council staff pages on what a process produced: results (public once published), the comparison of
every applicable counting rule, the exports of results and content (streamed with ``Cache-Control:
no-store``), the anonymised public .pb file and the statistics. voting/admin_routes.py mounts ``routes``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlmodel import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from app.i18n import get_locale
from app.i18n import gettext as _
from app.permissions import can_user, require
from app.web import render, view
from voting import charts, exports, lifecycle, results, stats
from voting.admin_common import MAX_ID, _districts, _process, _staff_process, _themes
from voting.models import Process

NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
    "pb": "text/plain; charset=utf-8",
}


def _download(body: Any, fmt: str, name: str) -> StreamingResponse:
    headers = dict(NO_STORE)
    headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return StreamingResponse(body, media_type=CONTENT_TYPES[fmt], headers=headers)


# --- results and comparison -------------------------------------------------------------------------------


def _charts(scope_results: list[results.ScopeResult]) -> dict[int, Any]:
    out = {}
    for res in scope_results:
        bars = [
            charts.Bar(p.title, p.score, p.funded, p.score_text)
            for p in sorted(res.projects, key=lambda p: (-p.score, p.id))
        ]
        out[res.scope.id] = charts.bar_chart(
            _("Votes per project: %(ballot)s", ballot=res.scope.label()),
            _(
                "Horizontal bars, one per project, ordered by votes; funded projects are dark. "
                "The table below has the same numbers."
            ),
            bars,
        )
    return out


@view
def results_page(request: Request, db: Session) -> Response:
    process = _process(request, db)
    staff = can_user(request.state.user, "staff.results", process)
    if process.results_published_at is None and not staff:
        raise HTTPException(404)
    scope_results = results.process_results(db, process, staff=staff)
    return render(
        request,
        "voting/results.html",
        process=process,
        results=scope_results,
        charts=_charts(scope_results),
        published=process.results_published_at is not None,
        printable=request.query_params.get("print") == "1",
        theme_names=dict(_themes(db)),
        district_names=dict(_districts(db)),
    )


@view
def compare(request: Request, db: Session) -> Response:
    process = _staff_process(request, db, "staff.results")
    if process.voting_closed_at is None:
        return render(request, "voting/compare.html", process=process, comparisons=[], closed=False)
    return render(
        request,
        "voting/compare.html",
        process=process,
        comparisons=results.compare_rules(db, process),
        closed=True,
    )


# --- exports ---------------------------------------------------------------------------------------------


@view(long=True)
def process_export(request: Request, db: Session) -> Response:
    process = _staff_process(request, db, "staff.exports")
    fmt = request.path_params["fmt"]
    return _process_export(request, db, process, fmt, staff=True)


@view
def public_pb(request: Request, db: Session) -> Response:
    """Anonymised ballots for research, once the results are published."""
    process = _process(request, db)
    if process.results_published_at is None:
        raise HTTPException(404)
    return _process_export(request, db, process, "pb", staff=False)


def _scope_param(request: Request, db: Session, process: Process) -> int:
    raw = request.query_params.get("scope", "0")
    ids = [s.id for s in lifecycle.scopes(db, process)]
    if not raw.isdigit() or int(raw) not in ids:
        raise HTTPException(404)
    return int(raw)


def _process_export(request: Request, db: Session, process: Process, fmt: str, *, staff: bool) -> Response:
    name = exports.filename(process, fmt)
    if fmt == "csv":
        delimiter = ";" if request.query_params.get("sep") == "semicolon" else ","
        rows = exports.result_rows(db, process, staff=staff)
        return _download(exports.csv_stream(exports.RESULT_HEADER, rows, delimiter=delimiter), fmt, name)
    if fmt == "xlsx":
        rows = exports.result_rows(db, process, staff=staff)
        return _download(exports.xlsx_stream([(_("Results"), exports.RESULT_HEADER, rows)]), fmt, name)
    if fmt == "json":
        return _download(
            iter([exports.json_bytes(exports.results_json(db, process, staff=staff))]), fmt, name
        )
    if fmt == "pb":
        scope = _scope_param(request, db, process)
        if scope:
            name = f"process-{process.id}-ballot-{scope}.pb"
        body = (
            line.encode("utf-8")
            for line in exports.pb_stream(request.app.state.engine, process_id=process.id, scope_id=scope)
        )
        return _download(body, fmt, name)
    raise HTTPException(404)


def _filters(request: Request, db: Session) -> exports.Filters | None:
    from proposals.models import ProposalStatus

    q = request.query_params
    out = exports.Filters()
    if any(len(q.get(key, "")) > 12 for key in ("theme", "district", "status", "from", "to")):
        return None
    try:
        if q.get("theme"):
            out.theme_id = int(q["theme"])
        if q.get("district"):
            out.district_id = int(q["district"])
        if q.get("status"):
            out.status = ProposalStatus(q["status"]).value
        if q.get("from"):
            out.date_from = dt.date.fromisoformat(q["from"])
        if q.get("to"):
            out.date_to = dt.date.fromisoformat(q["to"])
    except ValueError:
        return None
    if any(v is not None and not 0 < v <= MAX_ID for v in (out.theme_id, out.district_id)):
        return None
    return out


@view
def exports_page(request: Request, db: Session) -> Response:
    require(request, "staff.exports")
    from proposals.models import ProposalStatus

    return render(
        request,
        "voting/staff_exports.html",
        themes=_themes(db),
        districts=_districts(db),
        statuses=[s.value for s in ProposalStatus if s != ProposalStatus.DRAFT],
        processes=lifecycle.processes(db),
    )


@view(long=True)
def content_export(request: Request, db: Session) -> Response:
    require(request, "staff.exports")
    kind, fmt = request.path_params["kind"], request.path_params["fmt"]
    if kind not in ("proposals", "comments") or fmt not in ("csv", "xlsx"):
        raise HTTPException(404)
    filters = _filters(request, db)
    if filters is None:
        raise HTTPException(400)
    engine = request.app.state.engine
    if kind == "proposals":
        header, rows = exports.PROPOSAL_HEADER, exports.proposal_rows(engine, filters)
    else:
        header, rows = exports.COMMENT_HEADER, exports.comment_rows(engine, filters)
    if fmt == "csv":
        delimiter = ";" if request.query_params.get("sep") == "semicolon" else ","
        return _download(exports.csv_stream(header, rows, delimiter=delimiter), fmt, f"{kind}.csv")
    return _download(exports.xlsx_stream([(kind, header, rows)]), fmt, f"{kind}.xlsx")


# --- statistics ------------------------------------------------------------------------------------------


@view
def statistics(request: Request, db: Session) -> Response:
    require(request, "staff.statistics")
    data = stats.dashboard(db, locale=get_locale())
    return render(
        request,
        "voting/stats.html",
        data=data,
        day_chart=charts.line_chart(
            _("Ballots per day"),
            _("A line over the days of voting; the table below has the same numbers."),
            [(d.isoformat(), n) for d, n in data.ballots_per_day],
        ),
        theme_chart=charts.bar_chart(
            _("Proposals per theme area"),
            _("One bar per theme area; the table below has the same numbers."),
            [charts.Bar(name, n) for name, n in data.per_theme],
        ),
        district_chart=charts.bar_chart(
            _("Proposals per district"),
            _("One bar per district; the table below has the same numbers."),
            [charts.Bar(name, n) for name, n in data.per_district],
        ),
    )


S = "/staff/processes/{process_id:int}"
routes = [
    Route(f"{S}/compare", compare, name="staff_compare"),
    Route(f"{S}/export.{{fmt:str}}", process_export, name="staff_process_export"),
    Route("/processes/{process_id:int}/results", results_page, name="process_results"),
    Route("/processes/{process_id:int}/export.pb", public_pb, name="process_export_pb"),
    Route("/staff/exports", exports_page, name="staff_exports"),
    Route("/staff/exports/{kind:str}.{fmt:str}", content_export, name="staff_content_export"),
    Route("/staff/statistics", statistics, name="staff_statistics"),
]
