"""Council staff pages: the dashboard, processes (create, edit, import an archived vote from a pabulib file)
and the pre-flight list. Every handler loads its object (unknown id → 404), checks one named permission
(voting/permissions_staff.py) and calls one service. The projects of a process are in
voting/admin_project_routes.py; results, rule comparison, exports and statistics in admin_report_routes.py.

The lead mounts ``routes`` in app/main.py: the routes of all three modules, in this order. Opening and closing
a vote stay on the voting core's lifecycle page (/staff/processes/{id}/voting, voting/staff_routes.py).
"""

from __future__ import annotations

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.i18n import gettext as _
from app.permissions import require
from app.web import flash, form_of, redirect, render, view
from voting import admin_project_routes, admin_report_routes, imports, lifecycle, stats
from voting import admin_services as svc
from voting.admin_common import _districts, _staff_process
from voting.admin_forms import ProcessForm, ballot_type_choices, rule_choices
from voting.models import Process
from voting.pabulib import PabulibError

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


S = "/staff/processes/{process_id:int}"
routes = [
    Route("/staff", dashboard, name="staff_dashboard"),
    Route("/staff/processes", process_list, name="staff_processes"),
    Route("/staff/processes/new", process_create, methods=["GET", "POST"], name="staff_process_new"),
    Route("/staff/processes/import-pb", archive_import, methods=["GET", "POST"], name="staff_archive_import"),
    Route(f"{S}/edit", process_edit, methods=["GET", "POST"], name="staff_process_edit"),
    *admin_project_routes.routes,
    Route(f"{S}/preflight", preflight, name="staff_preflight"),
    *admin_report_routes.routes,
]
