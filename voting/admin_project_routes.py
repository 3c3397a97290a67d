"""Council staff pages for the projects of a process: the list with the add form, editing and removing a
project, turning an accepted proposal into a project, and the CSV/XLSX import (upload → preview with
per-row problems → confirm). voting/admin_routes.py mounts ``routes``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.i18n import get_locale
from app.i18n import gettext as _
from app.web import flash, form_of, redirect, render, view
from voting import admin_services as svc
from voting import imports
from voting.admin_common import MAX_ID, _districts, _staff_process, _themes
from voting.admin_forms import ProjectForm
from voting.models import Process, Project
from voting.routes_common import _process_row


def _theme_rows(db: Session) -> list[tuple[int, str, str]]:
    from proposals import services as proposal_services

    return [
        (t.id, t.name(get_locale()), t.slug)
        for t in proposal_services.themes(db, include_inactive=True)
        if t.id is not None
    ] + [(t.id, t.name_de, t.slug) for t in proposal_services.themes(db, include_inactive=True) if t.id]


def _district_rows(db: Session) -> list[tuple[int, str, str]]:
    from proposals import services as proposal_services

    return [(d.id, d.name, d.slug) for d in proposal_services.districts(db, include_inactive=True) if d.id]


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
    return _process_row(db, Project, process, request.path_params["project_id"])


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


S = "/staff/processes/{process_id:int}"
routes = [
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
]
