"""Staff pages of a budget vote: the lifecycle steps (freeze, open, close, tally, publish, destroy the voter
links) with the tally's progress, and the entry and four-eyes confirmation of paper ballots.

Every handler loads the process (404), checks one named permission (voting/permissions.py) and calls one
service (voting/lifecycle.py, tally.py, paper.py). Closing a vote starts its tally after the response, in a
background task (the staff page polls its progress). voting/routes.py mounts ``routes`` after the vote pages.
"""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.i18n import gettext as _
from app.i18n import lazy
from app.permissions import require
from app.web import flash, form_of, redirect, render, view
from voting import lifecycle, paper, tally
from voting.forms import BallotInput, ConfirmForm, PaperForm
from voting.lifecycle import LifecycleError, Phase, Scope
from voting.models import PaperBallot, Process
from voting.permissions import PaperTarget
from voting.routes_common import _process, _process_row, _scope

# --- staff: lifecycle ------------------------------------------------------------------------------------


def _staff_page(
    request: Request,
    db: Session,
    process: Process,
    status: int = 200,
    *,
    partial: str | None = None,
    **extra: Any,
) -> Response:
    current = lifecycle.phase(process)
    return render(
        request,
        "voting/staff.html",
        status,
        partial=partial,
        process=process,
        phase=current,
        scopes=lifecycle.scopes(db, process),
        issues=lifecycle.preflight(db, process) if current in (Phase.PREPARATION, Phase.FROZEN) else [],
        counts=lifecycle.ballot_counts(db, process),
        runs=tally.latest_runs(db, process),
        running=tally.is_running(db, process),
        tally_done=tally.is_done(db, process),
        error=extra.get("error"),
        step_issues=extra.get("step_issues", []),
        form=extra.get("form") or ConfirmForm(),
    )


@view
def staff_page(request: Request, db: Session) -> Response:
    process = _process(request, db)
    require(request, "voting.manage", process)
    return _staff_page(request, db, process)


@view
def tally_status(request: Request, db: Session) -> Response:
    """The tally's progress: the partial htmx polls, or the whole staff page without htmx."""
    process = _process(request, db)
    require(request, "voting.manage", process)
    return _staff_page(request, db, process, partial="voting/_tally_status.html")


STEPS = {
    "freeze": (lambda db, p: lifecycle.freeze(db, process=p), lazy("The project list has been frozen.")),
    "open": (lambda db, p: lifecycle.open_voting(db, process=p), lazy("Voting is open.")),
    "close": (
        lambda db, p: lifecycle.close_voting(db, process=p),
        lazy("Voting is closed. The tally is running."),
    ),
    "tally": (lambda db, p: tally.queue_tally(db, process=p), lazy("The tally is running again.")),
    "publish": (lambda db, p: lifecycle.publish_results(db, process=p), lazy("The results are published.")),
    "destroy-links": (
        lambda db, p: lifecycle.destroy_links(db, process=p),
        lazy("The voter links have been destroyed."),
    ),
}


@view
def staff_step(request: Request, db: Session) -> Response:
    process = _process(request, db)
    require(request, "voting.manage", process)
    step = request.path_params["step"]
    if step not in STEPS:
        raise HTTPException(404)
    if step == "destroy-links":
        form = ConfirmForm(form_of(request))
        if not form.is_valid():
            return _staff_page(request, db, process, 400, form=form)
    action, message = STEPS[step]
    try:
        action(db, process)
    except LifecycleError as exc:
        db.rollback()
        db.refresh(process)
        return _staff_page(request, db, process, 400, error=str(exc), step_issues=exc.issues)
    flash(request, _(message))
    response = redirect(f"/staff/processes/{process.id}/voting")
    if step in ("close", "tally"):
        response.background = BackgroundTask(
            lifecycle.run_tally, request.app.state.engine, process_id=process.id
        )
    return response


# --- staff: paper ballots ------------------------------------------------------------------------------


def _paper_page(
    request: Request, db: Session, process: Process, scope: Scope, status: int = 200, **extra: Any
) -> Response:
    all_scopes = lifecycle.scopes(db, process)
    entries = paper.papers(db, process=process)
    return render(
        request,
        "voting/paper.html",
        status,
        process=process,
        scope=scope,
        scopes=all_scopes,
        ballot=extra.get("ballot") or BallotInput(process, scope, raw=[]),
        form=extra.get("form") or PaperForm(),
        error=extra.get("error"),
        entries=entries,
        people=paper.people(db, entries),
        selections={e.id: _selection_titles(json.loads(e.selection), all_scopes) for e in entries},
        paper_target=lambda entry: PaperTarget(process, entry),
    )


def _selection_titles(selection: Any, all_scopes: list[Scope]) -> list[tuple[str, str]]:
    titles = {p.id: p.title for s in all_scopes for p in s.projects}
    if isinstance(selection, dict):
        return [(titles.get(int(k), k), str(v)) for k, v in selection.items()]
    return [(titles.get(int(pid), str(pid)), str(k)) for k, pid in enumerate(selection, start=1)]


@view
def paper_page(request: Request, db: Session) -> Response:
    process = _process(request, db)
    require(request, "voting.manage", process)
    form_data = form_of(request)
    scope = _scope(request, db, process, form_data.get("scope") if request.method == "POST" else None)
    if request.method == "GET":
        return _paper_page(request, db, process, scope)
    staff = require(request, "voting.paper.enter", PaperTarget(process))
    form = PaperForm(form_data)
    ballot = BallotInput.parse(process, scope, form_data)
    if form.is_valid():
        if ballot.errors:
            form.add_error("selection", next(iter(ballot.errors.values())))
        else:
            try:
                paper.enter_paper(
                    db,
                    process=process,
                    staff=staff,
                    scope=scope.id,
                    selection=ballot.raw,
                    **form.cleaned,
                )
            except paper.PaperError as exc:
                form.add_error(exc.field, str(exc))
    if form.errors:
        db.rollback()
        return _paper_page(request, db, process, scope, 400, form=form, ballot=ballot)
    flash(request, _("The paper ballot has been entered. A second person must confirm it."))
    return redirect(f"/staff/processes/{process.id}/paper?scope={scope.id}")


def _paper_entry(request: Request, db: Session, process: Process) -> PaperBallot:
    return _process_row(db, PaperBallot, process, request.path_params["paper_id"])


@view
def paper_confirm(request: Request, db: Session) -> Response:
    process = _process(request, db)
    entry = _paper_entry(request, db, process)
    staff = require(request, "voting.paper.confirm", PaperTarget(process, entry))
    return _paper_decision(
        request,
        db,
        process,
        entry,
        lambda: paper.confirm_paper(db, process=process, staff=staff, paper_id=entry.id),
        _("The paper ballot has been confirmed and counted."),
    )


@view
def paper_reject(request: Request, db: Session) -> Response:
    process = _process(request, db)
    entry = _paper_entry(request, db, process)
    staff = require(request, "voting.paper.enter", PaperTarget(process, entry))
    return _paper_decision(
        request,
        db,
        process,
        entry,
        lambda: paper.reject_paper(db, process=process, staff=staff, paper_id=entry.id),
        _("The paper ballot has been rejected. It will not be counted."),
    )


def _paper_decision(
    request: Request, db: Session, process: Process, entry: PaperBallot, action, message: str
) -> Response:
    try:
        action()
    except paper.PaperError as exc:
        db.rollback()
        scope = _scope(request, db, process, entry.scope)
        return _paper_page(request, db, process, scope, 400, error=str(exc))
    flash(request, message)
    return redirect(f"/staff/processes/{process.id}/paper?scope={entry.scope}")


S = "/staff/processes/{process_id:int}"
routes = [
    Route(f"{S}/voting", staff_page, name="voting_staff"),
    Route(f"{S}/voting/tally", tally_status, name="voting_tally_status"),
    Route(f"{S}/voting/{{step:str}}", staff_step, methods=["POST"], name="voting_step"),
    Route(f"{S}/paper", paper_page, methods=["GET", "POST"], name="voting_paper"),
    Route(
        f"{S}/paper/{{paper_id:int}}/confirm", paper_confirm, methods=["POST"], name="voting_paper_confirm"
    ),
    Route(f"{S}/paper/{{paper_id:int}}/reject", paper_reject, methods=["POST"], name="voting_paper_reject"),
]
