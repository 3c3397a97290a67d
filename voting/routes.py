"""Budget votes on the web: the process page, the ballot (htmx-enhanced, plain forms without JavaScript),
confirmation, casting and the receipt. The staff pages for the lifecycle steps and paper ballots are in
voting/staff_routes.py; ``routes`` here includes theirs (after the vote pages), as app/main.py mounts it.

Every handler loads the process (404), checks one named permission (voting/permissions.py) and calls one
service (voting/ballots.py, lifecycle.py, tally.py).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlmodel import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.database import begin_write
from app.forms import FieldError
from app.i18n import get_locale
from app.i18n import gettext as _
from app.mail import send_mail
from app.permissions import can_user, require
from app.ratelimit import check_and_hit
from app.web import flash, form_of, rate_limit, redirect, render, settings_of, view
from voting import ballots, keys, lifecycle, staff_routes, tally
from voting.forms import BallotInput, parse_selection_json
from voting.lifecycle import Scope
from voting.models import BallotType, Process
from voting.permissions import CastTarget
from voting.routes_common import _process, _scope

log = logging.getLogger("mitmachen.voting")
# Per account (not per IP: a town hall or library shares one address): casting appends to the public log,
# previews cost a validation each (SECURITY.md V2.4.1).
BALLOT_LIMITS = {"cast": (60, 3600), "preview": (600, 3600)}


def _limit(request: Request, db: Session, kind: str) -> None:
    limit, window = BALLOT_LIMITS[kind]
    user = request.state.user
    enabled = settings_of(request).rate_limit_enabled
    check_and_hit(db, [f"ballot-{kind}:acct:{user.id}"], limit=limit, window_seconds=window, enabled=enabled)


def _secret(request: Request) -> str:
    return settings_of(request).secret_key


def _lookups(db: Session) -> dict[str, Any]:
    from proposals import services as proposal_services

    locale = get_locale()
    return {
        "theme_names": {t.id: t.name(locale) for t in proposal_services.themes(db, include_inactive=True)},
        "district_names": lifecycle.district_names(db),
    }


# --- public pages ---------------------------------------------------------------------------------------


@view
def process_list(request: Request, db: Session) -> Response:
    processes = lifecycle.processes(db)
    return render(
        request,
        "voting/processes.html",
        processes=processes,
        phases={p.id: lifecycle.phase(p) for p in processes},
    )


@view
def process_page(request: Request, db: Session) -> Response:
    process = _process(request, db)
    user = request.state.user
    all_scopes = lifecycle.scopes(db, process)
    current = ballots.current_ballots(db, secret_key=_secret(request), process=process, voter=user)
    problems = ballots.eligibility_problems(process, user) if user is not None else []
    return render(
        request,
        "voting/process.html",
        process=process,
        phase=lifecycle.phase(process),
        timeline=lifecycle.timeline(process),
        scopes=all_scopes,
        voter_scopes=ballots.voter_scopes(db, process, user),
        current=current,
        problems=[ballots.eligibility_message(process, code) for code in problems],
        verify_link=ballots.needs_verification(problems),
        results=tally.published_results(db, process),
        key_id=keys.signing_key().key_id if process.voting_opened_at else "",
        **_lookups(db),
    )


# --- the ballot ---------------------------------------------------------------------------------------


def _refusal(request: Request, db: Session, process: Process, scope: Scope) -> Response | None:
    """None if the viewer may fill in this ballot; otherwise the page saying why (403), or a login redirect."""
    user = request.state.user
    target = CastTarget(process, scope.id)
    if user is None or can_user(user, "voting.cast", target):
        require(request, "voting.cast", target)
        return None
    codes: list[str] = []
    if not lifecycle.is_voting_open(process):
        reasons = [_("Voting is not open.")]
    else:
        codes = ballots.eligibility_problems(process, user)
        reasons = [ballots.eligibility_message(process, c) for c in codes] or [
            _("You cannot vote in this ballot.")
        ]
    return render(
        request,
        "voting/refused.html",
        403,
        process=process,
        reasons=reasons,
        verify_link=ballots.needs_verification(codes),
    )


def _filters(request: Request, source: Any, scope: Scope) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for key, attr in (("theme", "theme_id"), ("district", "district_id")):
        value = str(source.get(key, "") or "")
        options = {getattr(p, attr) for p in scope.projects}
        out[key] = int(value) if value.isdigit() and int(value) in options else None
    return out


def _ballot_page(
    request: Request,
    db: Session,
    process: Process,
    scope: Scope,
    ballot: BallotInput,
    status: int = 200,
    *,
    filters: dict[str, int | None] | None = None,
    error: str | None = None,
) -> Response:
    filters = filters or {"theme": None, "district": None}
    shown = [
        p
        for p in scope.projects
        if (filters["theme"] is None or p.theme_id == filters["theme"])
        and (filters["district"] is None or p.district_id == filters["district"])
    ]
    current = ballots.current_ballots(
        db, secret_key=_secret(request), process=process, voter=request.state.user
    )
    return render(
        request,
        "voting/ballot.html",
        status,
        partial="voting/_summary.html",
        process=process,
        scope=scope,
        voter_scopes=ballots.voter_scopes(db, process, request.state.user),
        ballot=ballot,
        summary=ballot.summary(),
        shown=shown,
        hidden=[p for p in scope.projects if p not in shown],
        filters=filters,
        theme_options=sorted({p.theme_id for p in scope.projects if p.theme_id}),
        district_options=sorted({p.district_id for p in scope.projects if p.district_id}),
        current=current.get(scope.id),
        error=error,
        **_lookups(db),
    )


@view
def ballot_page(request: Request, db: Session) -> Response:
    """GET: the ballot, pre-filled with the voter's current one. POST: check, filter, reorder or go on to
    the confirmation (htmx: only the summary)."""
    process = _process(request, db)
    scope = _scope(request, db, process)
    refusal = _refusal(request, db, process, scope)
    if refusal is not None:
        return refusal
    if request.method == "GET":
        current = ballots.current_ballots(
            db, secret_key=_secret(request), process=process, voter=request.state.user
        )
        ballot = (
            BallotInput.from_selection(process, scope, json.loads(current[scope.id].selection))
            if scope.id in current
            else BallotInput(process, scope, raw=[] if process.ballot_type != BallotType.CUMULATIVE else {})
        )
        return _ballot_page(
            request, db, process, scope, ballot, filters=_filters(request, request.query_params, scope)
        )
    _limit(request, db, "preview")
    form = form_of(request)
    ballot = BallotInput.parse(process, scope, form)
    action = str(form.get("action", "check"))
    if action.startswith("move:"):
        ballot.move(action.removeprefix("move:"))
    if action == "review" and request.headers.get("hx-request") != "true":
        summary = ballot.summary()
        if not summary.is_valid:
            return _ballot_page(
                request, db, process, scope, ballot, 400, filters=_filters(request, form, scope)
            )
        return render(
            request, "voting/confirm.html", process=process, scope=scope, ballot=ballot, summary=summary
        )
    return _ballot_page(request, db, process, scope, ballot, filters=_filters(request, form, scope))


@view(deferred_write=True)
def cast(request: Request, db: Session) -> Response:
    # Under its share lock from the start (PostgreSQL; cast_ballot then needs no second read). SQLite has no
    # row locks: cast_ballot reads it again once the write lock is taken.
    process = lifecycle.lock_id(db, request.path_params["process_id"], shared=True)
    if process is None:
        raise HTTPException(404)
    form = form_of(request)
    scope = _scope(request, db, process, form.get("scope", "0"))
    refusal = _refusal(request, db, process, scope)
    if refusal is not None:
        return refusal
    user = request.state.user
    # SQLite's write lock from here on only: the reads above ran without it; cast_ballot reads the process
    # again under the lock (a close that came in between is seen there).
    begin_write(db)
    _limit(request, db, "cast")
    try:
        raw = parse_selection_json(form.get("selection"))
        result = ballots.cast_ballot(
            db=db, secret_key=_secret(request), process=process, voter=user, scope=scope.id, selection=raw
        )
    except (FieldError, ballots.BallotError) as exc:
        db.rollback()  # nothing written
        code = getattr(exc, "code", "invalid")
        if code in ("invalid",) or isinstance(exc, FieldError):
            empty = BallotInput(
                process, scope, raw=[] if process.ballot_type != BallotType.CUMULATIVE else {}
            )
            return _ballot_page(request, db, process, scope, empty, 400, error=str(exc))
        return render(
            request,
            "voting/refused.html",
            403 if code != "closed" else 400,
            process=process,
            reasons=[str(exc)],
        )
    if not result.changed:
        flash(request, _("Your ballot is unchanged."), "info")
    elif result.ballot.version > 1:
        flash(request, _("Your ballot has been changed. Only this latest version counts."))
    else:
        flash(request, _("Thank you! Your ballot has been cast."))
    response = redirect(f"/processes/{process.id}/receipt?scope={scope.id}")
    if form.get("send_receipt") == "on" and user.email:
        _queue_receipt_mail(request, db, process, result.receipt, user.email)
    return response


def _queue_receipt_mail(
    request: Request, db: Session, process: Process, receipt: dict[str, Any], to: str
) -> None:
    """Queue the receipt mail in this unit of work (the outbox sends it after the commit)."""
    settings = settings_of(request)
    check_url = f"{settings.base_url}/processes/{process.id}/receipt?scope={receipt['scope']}"
    subject, body = ballots.receipt_mail(process=process, receipt=receipt, check_url=check_url)
    send_mail(db, settings, to=to, subject=subject, body=body)


def _my_receipt(request: Request, db: Session) -> tuple[Process, Scope, dict[str, Any]]:
    process = _process(request, db)
    user = require(request, "account.view")
    scope = _scope(request, db, process)
    receipt = ballots.current_receipt(
        db, secret_key=_secret(request), process=process, voter=user, scope=scope.id
    )
    if receipt is None:
        raise HTTPException(404)
    return process, scope, receipt


@view
def receipt_page(request: Request, db: Session) -> Response:
    process, scope, receipt = _my_receipt(request, db)
    return render(
        request,
        "voting/receipt.html",
        process=process,
        scope=scope,
        receipt=receipt,
        head=ballots.receipt_head(receipt),
        can_change=can_user(request.state.user, "voting.cast", CastTarget(process, scope.id)),
    )


@view
def receipt_json(request: Request, db: Session) -> Response:
    process, scope, receipt = _my_receipt(request, db)
    name = f"receipt-process-{process.id}-ballot-{scope.id}.json"
    return Response(
        json.dumps(receipt, indent=2, sort_keys=True, ensure_ascii=False, default=str),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )


@view
def receipt_mail(request: Request, db: Session) -> Response:
    process, scope, receipt = _my_receipt(request, db)
    user = request.state.user
    rate_limit(request, db, "mail", f"user:{user.id}")
    flash(request, _("The receipt is on its way to %(email)s.", email=user.email))
    _queue_receipt_mail(request, db, process, receipt, user.email)
    return redirect(f"/processes/{process.id}/receipt?scope={scope.id}")


P = "/processes/{process_id:int}"
routes = [
    Route("/processes", process_list, name="voting_processes"),
    Route(P, process_page, name="voting_process"),
    Route(f"{P}/ballot", ballot_page, methods=["GET", "POST"], name="voting_ballot"),
    Route(f"{P}/ballot/preview", ballot_page, methods=["POST"], name="voting_ballot_preview"),
    Route(f"{P}/ballot/cast", cast, methods=["POST"], name="voting_cast"),
    Route(f"{P}/receipt", receipt_page, name="voting_receipt"),
    Route(f"{P}/receipt.json", receipt_json, name="voting_receipt_json"),
    Route(f"{P}/receipt/mail", receipt_mail, methods=["POST"], name="voting_receipt_mail"),
    *staff_routes.routes,
]
