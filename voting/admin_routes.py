"""Council staff pages: processes and projects, imports, pre-flight list, results, rule comparison,
exports and statistics. Every handler loads its object (unknown id → 404), checks one named permission
(voting/permissions_staff.py) and calls one service. Exports stream with ``Cache-Control: no-store``.

The lead mounts ``routes`` in app/main.py. Opening and closing a vote stay on the voting core's lifecycle
page (/staff/processes/{id}/voting).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlmodel import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from app.i18n import get_locale
from app.i18n import gettext as _
from app.permissions import can_user, require
from app.web import flash, form_of, redirect, render, view
from voting import admin_services as svc
from voting import charts, exports, imports, lifecycle, results, stats
from voting import permissions_staff as _perms  # noqa: F401  (registers the permissions)
from voting.admin_forms import ProcessForm, ProjectForm, ballot_type_choices, rule_choices
from voting.models import Process, Project
from voting.pabulib import PabulibError

NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
    "pb": "text/plain; charset=utf-8",
}


MAX_ID = 2**31 - 1  # ids are INTEGER columns: larger numbers cannot exist (and overflow the query)


def _process(request: Request, db: Session) -> Process:
    pid = request.path_params["process_id"]
    process = db.get(Process, pid) if pid <= MAX_ID else None
    if process is None:
        raise HTTPException(404)
    return process


def _staff_process(request: Request, db: Session, permission: str = "staff.processes") -> Process:
    """The process of the URL (unknown id → 404), once the user holds ``permission`` for it."""
    process = _process(request, db)
    require(request, permission, process)
    return process


def _themes(db: Session) -> list[tuple[int, str]]:
    from proposals import services as proposal_services

    locale = get_locale()
    return [(t.id, t.name(locale)) for t in proposal_services.themes(db, include_inactive=True) if t.id]


def _theme_rows(db: Session) -> list[tuple[int, str, str]]:
    from proposals import services as proposal_services

    return [
        (t.id, t.name(get_locale()), t.slug)
        for t in proposal_services.themes(db, include_inactive=True)
        if t.id is not None
    ] + [(t.id, t.name_de, t.slug) for t in proposal_services.themes(db, include_inactive=True) if t.id]


def _districts(db: Session) -> list[tuple[int, str]]:
    from proposals import services as proposal_services

    return [
        (d.id, d.name) for d in proposal_services.districts(db, include_inactive=True) if d.id is not None
    ]


def _district_rows(db: Session) -> list[tuple[int, str, str]]:
    from proposals import services as proposal_services

    return [(d.id, d.name, d.slug) for d in proposal_services.districts(db, include_inactive=True) if d.id]


def _download(body: Any, fmt: str, name: str) -> StreamingResponse:
    headers = dict(NO_STORE)
    headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return StreamingResponse(body, media_type=CONTENT_TYPES[fmt], headers=headers)


# --- dashboard and processes ------------------------------------------------------------------------------


@view
def dashboard(request: Request, db: Session) -> Response:
    require(request, "staff.processes")
    all_processes = lifecycle.processes(db)
    return render(
        request,
        "voting/staff_dashboard.html",
        processes=all_processes,
        phases={p.id: lifecycle.phase(p) for p in all_processes},
        totals=stats.totals(db),
    )


@view
def process_list(request: Request, db: Session) -> Response:
    require(request, "staff.processes")
    all_processes = lifecycle.processes(db)
    return render(
        request,
        "voting/staff_processes.html",
        processes=all_processes,
        phases={p.id: lifecycle.phase(p) for p in all_processes},
    )


def _process_form_page(
    request: Request, form: ProcessForm, process: Process | None, status: int = 200, error: str = ""
) -> Response:
    return render(
        request,
        "voting/staff_process_form.html",
        status,
        form=form,
        process=process,
        ballot_types=ballot_type_choices(),
        rules=rule_choices(),
        timeline=lifecycle.timeline(process) if process else [],
        error=error,
    )


@view
def process_create(request: Request, db: Session) -> Response:
    user = require(request, "staff.processes")
    districts = _districts(db)
    if request.method == "GET":
        return _process_form_page(
            request,
            ProcessForm(
                initial={"ballot_type": "approval", "rule": "greedy", "min_choices": "0"}, districts=districts
            ),
            None,
        )
    form = ProcessForm(form_of(request), districts=districts)
    if not form.is_valid():
        return _process_form_page(request, form, None, 400)
    process = svc.save_process(db, data=form.data_object(), user_id=user.id)
    flash(request, _("The process has been created. Now add its projects."))
    return redirect(f"/staff/processes/{process.id}/projects")


@view
def process_edit(request: Request, db: Session) -> Response:
    process = _staff_process(request, db)
    districts = _districts(db)
    if request.method == "GET":
        form = ProcessForm(initial=svc.process_form_initial(db, process), districts=districts)
        return _process_form_page(request, form, process)
    form = ProcessForm(form_of(request), districts=districts)
    if not form.is_valid():
        return _process_form_page(request, form, process, 400)
    try:
        svc.save_process(db, data=form.data_object(), process=process)
    except svc.AdminError as exc:
        db.rollback()
        db.refresh(process)
        return _process_form_page(request, form, process, 400, error=exc.message)
    flash(request, _("The process has been saved."))
    return redirect(f"/staff/processes/{process.id}/edit")


# --- projects ------------------------------------------------------------------------------------------


def _projects_page(
    request: Request,
    db: Session,
    process: Process,
    status: int = 200,
    *,
    form: ProjectForm | None = None,
    preview: imports.ProjectImport | None = None,
    payload: str = "",
    upload_name: str = "",
    error: str = "",
) -> Response:
    themes, districts = _themes(db), _districts(db)
    return render(
        request,
        "voting/staff_projects.html",
        status,
        process=process,
        projects=svc.process_projects(db, process),
        frozen=process.frozen_at is not None or process.voting_opened_at is not None,
        form=form or ProjectForm(themes=themes, districts=districts),
        themes=themes,
        districts=districts,
        theme_names=dict(themes),
        district_names=dict(districts),
        proposals=svc.accepted_proposals(db, process),
        preview=preview,
        payload=payload,
        upload_name=upload_name,
        error=error,
    )


@view
def projects(request: Request, db: Session) -> Response:
    process = _staff_process(request, db)
    if request.method == "GET":
        return _projects_page(request, db, process)
    form = ProjectForm(form_of(request), themes=_themes(db), districts=_districts(db))
    if not form.is_valid():
        return _projects_page(request, db, process, 400, form=form)
    return _project_action(
        request,
        db,
        process,
        lambda: svc.save_project(db, process=process, data=form.data_object()),
        _("The project has been added."),
        form=form,
    )


def _project_action(
    request: Request,
    db: Session,
    process: Process,
    action: Callable[[], Any],
    done: str | Callable[[Any], str],
    *,
    form: ProjectForm | None = None,
) -> Response:
    """Run one project service: a domain error shows the projects page again (400) with its message;
    success flashes ``done`` (or ``done(result)``) and redirects to the projects page."""
    try:
        result = action()
    except svc.AdminError as exc:
        return _projects_page(request, db, process, 400, form=form, error=exc.message)
    flash(request, done(result) if callable(done) else done)
    return redirect(f"/staff/processes/{process.id}/projects")


def _project(request: Request, db: Session, process: Process) -> Project:
    pid = request.path_params["project_id"]
    project = db.get(Project, pid) if pid <= MAX_ID else None
    if project is None or project.process_id != process.id:
        raise HTTPException(404)
    return project


@view
def project_edit(request: Request, db: Session) -> Response:
    process = _staff_process(request, db)
    project = _project(request, db, process)
    themes, districts = _themes(db), _districts(db)
    initial = {
        "title": project.title,
        "description": project.description_md,
        "cost": svc.euros_text(project.cost_cents),
        "theme": project.theme_id or "",
        "district": project.district_id or "",
        "feasibility_notes": project.feasibility_notes,
    }
    error = ""
    if request.method == "POST":
        form = ProjectForm(form_of(request), themes=themes, districts=districts)
        if form.is_valid():
            try:
                svc.save_project(db, process=process, project=project, data=form.data_object())
            except svc.AdminError as exc:
                db.rollback()
                error = exc.message
            else:
                flash(request, _("The project has been saved."))
                return redirect(f"/staff/processes/{process.id}/projects")
        status = 400
    else:
        form = ProjectForm(initial=initial, themes=themes, districts=districts)
        status = 200
    return render(
        request,
        "voting/staff_project_form.html",
        status,
        process=process,
        project=project,
        form=form,
        themes=themes,
        districts=districts,
        error=error,
        frozen=process.frozen_at is not None or process.voting_opened_at is not None,
    )


@view
def project_delete(request: Request, db: Session) -> Response:
    process = _staff_process(request, db)
    project = _project(request, db, process)
    return _project_action(
        request,
        db,
        process,
        lambda: svc.delete_project(db, process=process, project=project),
        _("The project has been removed."),
    )


@view
def project_from_proposal(request: Request, db: Session) -> Response:
    process = _staff_process(request, db)
    raw = str(form_of(request).get("proposal_id", ""))
    if not raw.isdigit() or int(raw) > MAX_ID:
        return _projects_page(request, db, process, 400, error=_("Please choose a proposal."))
    return _project_action(
        request,
        db,
        process,
        lambda: svc.project_from_proposal(db, process=process, proposal_id=int(raw)),
        _("The proposal is now a project of this process."),
    )


@view(long=True)
def project_import(request: Request, db: Session) -> Response:
    """Upload → preview with per-row problems; confirm (the same file, sent back) → import everything."""
    process = _staff_process(request, db)
    data = form_of(request)
    payload = str(data.get("payload", ""))
    name = str(data.get("filename", ""))[:200]
    if payload:
        try:
            raw = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            return _projects_page(
                request,
                db,
                process,
                400,
                error=_("The import could not be read; please upload the file again."),
            )
    else:
        upload = data.get("file")
        if upload is None or isinstance(upload, str) or not getattr(upload, "filename", ""):
            return _projects_page(request, db, process, 400, error=_("Please choose a CSV or XLSX file."))
        name = upload.filename[:200]
        raw = upload.file.read(imports.MAX_BYTES + 1)
    parsed = imports.parse_projects(raw, name, themes=_theme_rows(db), districts=_district_rows(db))
    if not parsed.ok:
        return _projects_page(request, db, process, 400, preview=parsed, upload_name=name)
    if data.get("confirm") != "1" or not payload:
        return _projects_page(
            request,
            db,
            process,
            preview=parsed,
            payload=base64.b64encode(raw).decode("ascii"),
            upload_name=name,
        )
    return _project_action(
        request,
        db,
        process,
        lambda: imports.import_projects(db, process=process, parsed=parsed),
        lambda created: _("%(n)s projects have been imported.", n=len(created)),
    )


@view(long=True)
def archive_import(request: Request, db: Session) -> Response:
    """A pabulib file becomes an archived, published process (results of earlier years, other cities)."""
    user = require(request, "staff.processes")
    if request.method == "GET":
        return render(request, "voting/staff_archive.html", error="", rules=rule_choices())
    data = form_of(request)
    upload = data.get("file")
    rule = str(data.get("rule", "")) or None
    if rule is not None and rule not in dict(rule_choices()):
        rule = None
    if upload is None or isinstance(upload, str) or not getattr(upload, "filename", ""):
        return render(
            request,
            "voting/staff_archive.html",
            400,
            error=_("Please choose a .pb file."),
            rules=rule_choices(),
        )
    raw = upload.file.read(imports.MAX_BYTES * 2 + 1)
    try:
        if len(raw) > imports.MAX_BYTES * 2:
            raise ValueError(_("The file is larger than 4 MB."))
        process = imports.import_pabulib(db, raw=raw, rule=rule, user_id=user.id)
    except (PabulibError, ValueError) as exc:
        db.rollback()
        return render(request, "voting/staff_archive.html", 400, error=str(exc), rules=rule_choices())
    flash(request, _("The archived vote has been imported."))
    return redirect(f"/processes/{process.id}/results")


@view
def preflight(request: Request, db: Session) -> Response:
    process = _staff_process(request, db)
    return render(
        request,
        "voting/staff_preflight.html",
        process=process,
        phase=lifecycle.phase(process),
        issues=lifecycle.preflight(db, process),
    )


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
    Route("/staff", dashboard, name="staff_dashboard"),
    Route("/staff/processes", process_list, name="staff_processes"),
    Route("/staff/processes/new", process_create, methods=["GET", "POST"], name="staff_process_new"),
    Route("/staff/processes/import-pb", archive_import, methods=["GET", "POST"], name="staff_archive_import"),
    Route(f"{S}/edit", process_edit, methods=["GET", "POST"], name="staff_process_edit"),
    Route(f"{S}/projects", projects, methods=["GET", "POST"], name="staff_projects"),
    Route(f"{S}/projects/import", project_import, methods=["POST"], name="staff_projects_import"),
    Route(
        f"{S}/projects/from-proposal",
        project_from_proposal,
        methods=["POST"],
        name="staff_project_from_proposal",
    ),
    Route(
        f"{S}/projects/{{project_id:int}}/edit",
        project_edit,
        methods=["GET", "POST"],
        name="staff_project_edit",
    ),
    Route(
        f"{S}/projects/{{project_id:int}}/delete",
        project_delete,
        methods=["POST"],
        name="staff_project_delete",
    ),
    Route(f"{S}/preflight", preflight, name="staff_preflight"),
    Route(f"{S}/compare", compare, name="staff_compare"),
    Route(f"{S}/export.{{fmt:str}}", process_export, name="staff_process_export"),
    Route("/processes/{process_id:int}/results", results_page, name="process_results"),
    Route("/processes/{process_id:int}/export.pb", public_pb, name="process_export_pb"),
    Route("/staff/exports", exports_page, name="staff_exports"),
    Route("/staff/exports/{kind:str}.{fmt:str}", content_export, name="staff_content_export"),
    Route("/staff/statistics", statistics, name="staff_statistics"),
]
