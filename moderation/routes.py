"""Moderation pages: report form, moderators' queue and decisions, authors' notices and appeals, the
public transparency report with CSV export, and the admin page for grounds, pre-moderation and word list.

Routes are thin: permissions via ``require``, rules in moderation/services.py. Every action is a plain
form POST (works without JavaScript); htmx requests get only the partial.
"""

from __future__ import annotations

import csv
import io

from sqlalchemy import select
from sqlmodel import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.database import utcnow
from app.i18n import get_locale
from app.i18n import gettext as _
from app.models import User
from app.permissions import can_user, require
from app.ratelimit import check_and_hit
from app.web import client_ip, flash, form_of, redirect, render, settings_of, view
from moderation import permissions as _permissions  # noqa: F401  (registers the permissions)
from moderation import premoderation, queue, services
from moderation.forms import AppealDecisionForm, AppealForm, DecisionForm, ReportForm, SettingsForm
from moderation.models import Appeal, ModerationDecision, ModerationGround
from moderation.services import ModerationError
from proposals.models import Proposal, Theme

TYPES = ("proposal", "comment", "attachment", "profile")
SWAP = {"X-Moderation-Swap": "1"}  # htmx swaps these 400 answers in place (app/static/js/moderation.js)


def _user(request: Request) -> User | None:
    return getattr(request.state, "user", None)


def _int_param(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name, "")
    return int(raw) if raw.isdigit() and len(raw) < 10 else None


def _item_or_404(db: Session, request: Request) -> services.Item:
    item_type = request.path_params["item_type"]
    if item_type not in TYPES:
        raise HTTPException(404)
    item = services.load_item(db, item_type=item_type, item_id=request.path_params["item_id"])
    if item is None:
        raise HTTPException(404)
    return item


def _rate_limit_report(request: Request, db: Session, user: User | None) -> None:
    """Reports share the posting limit's size (RATE_LIMIT_POST) under their own ``report:`` keys."""
    settings = settings_of(request)
    limit, window = settings.rate("post")
    keys = [f"report:ip:{client_ip(request)}"] + ([f"report:acct:{user.id}"] if user else [])
    check_and_hit(db, keys, limit=limit, window_seconds=window, enabled=settings.rate_limit_enabled)


# --- report --------------------------------------------------------------------------------------------------


@view
def report(request: Request, db: Session) -> Response:
    user = _user(request)
    require(request, "moderation.report")
    item_type = request.path_params["item_type"]
    if item_type not in TYPES:
        raise HTTPException(404)
    item = services.load_item(db, item_type=item_type, item_id=request.path_params["item_id"])
    form = ReportForm(form_of(request) if request.method == "POST" else None)
    ctx = dict(
        item=item,
        item_type=item_type,
        categories=services.category_labels(),
        types=services.item_type_labels(),
    )
    if item is None:
        return render(request, "moderation/report.html", 404, form=form, gone=True, **ctx)
    if request.method == "POST":
        if form.is_valid():
            _rate_limit_report(request, db, user)
            try:
                _flag, created = services.report(
                    db,
                    reporter=user,
                    ip=client_ip(request),
                    secret_key=settings_of(request).secret_key,
                    item_type=item_type,
                    item_id=item.id,
                    category=form.cleaned["category"],
                    explanation=form.cleaned["explanation"],
                )
            except ModerationError as exc:
                form.add_error(exc.field, exc.message)
            else:
                message = (
                    _("Thank you. Our moderators will review your report.")
                    if created
                    else _("You have already reported this. Our moderators will review it.")
                )
                return render(
                    request,
                    "moderation/report_done.html",
                    partial="moderation/_report_done.html",
                    message=message,
                    **ctx,
                )
        return render(
            request,
            "moderation/report.html",
            400,
            partial="moderation/_report_form.html",
            form=form,
            gone=False,
            headers=SWAP,
            **ctx,
        )
    return render(request, "moderation/report.html", form=form, gone=False, **ctx)


# --- queue ---------------------------------------------------------------------------------------------------


@view
def queue_page(request: Request, db: Session) -> Response:
    require(request, "moderation.queue")
    item_type = request.query_params.get("type", "")
    item_type = item_type if item_type in TYPES else ""
    sort = request.query_params.get("sort", "age")
    sort = sort if sort in queue.SORTS else "age"
    theme_id = _int_param(request, "theme")
    page = _int_param(request, "page") or 1
    entries, total = queue.queue(db, item_type=item_type, theme_id=theme_id, sort=sort, page=page)
    themes = list(db.execute(select(Theme).order_by(Theme.position, Theme.id)).scalars())
    open_appeals = db.execute(
        select(Appeal, ModerationDecision)
        .join(ModerationDecision, ModerationDecision.id == Appeal.decision_id)
        .where(Appeal.decided_by_decision_id.is_(None))
        .order_by(Appeal.created_at)
        .limit(50)
    ).all()
    return render(
        request,
        "moderation/queue.html",
        entries=entries,
        held=queue.held(db) if page == 1 else [],
        total=total,
        page=page,
        pages=max(1, -(-total // queue.PAGE_SIZE)),
        item_type=item_type,
        theme_id=theme_id,
        sort=sort,
        themes=themes,
        appeals=open_appeals,
        labels=services.action_labels(),
        categories=services.category_labels(),
        types=services.item_type_labels(),
    )


def _decision_context(request: Request, db: Session, item: services.Item, form: DecisionForm) -> dict:
    user = _user(request)
    locale = get_locale()
    actions = [
        (a, services.action_labels()[a])
        for a in services.ACTIONS_FOR[item.type]
        if a != "ban" or can_user(user, "moderation.ban")
    ]
    return dict(
        item=item,
        form=form,
        actions=actions,
        ground_options=[(g.id, g.title(locale)) for g in services.active_grounds(db)],
        flags=queue.flags_for(db, item_type=item.type, item_id=item.id),
        decisions=queue.decisions_for_item(db, item_type=item.type, item_id=item.id),
        history=queue.author_history(db, author_id=item.author_id),
        hidden=services.is_hidden(db, item_type=item.type, item_id=item.id),
        proposal=db.get(Proposal, item.proposal_id) if item.proposal_id else None,
        theme_options=[
            (t.id, t.name_en if locale == "en" else t.name_de)
            for t in db.execute(select(Theme).where(Theme.is_active).order_by(Theme.position)).scalars()
        ],
        categories=services.category_labels(),
        types=services.item_type_labels(),
        labels=services.action_labels(),
        own=item.author_id is not None and user is not None and item.author_id == user.id,
    )


@view
def item_page(request: Request, db: Session) -> Response:
    require(request, "moderation.queue")
    item = _item_or_404(db, request)
    return render(request, "moderation/item.html", **_decision_context(request, db, item, DecisionForm()))


@view
def decide(request: Request, db: Session) -> Response:
    require(request, "moderation.queue")
    item = _item_or_404(db, request)
    moderator = require(request, "moderation.decide", item)
    form = DecisionForm(form_of(request))
    if form.is_valid():
        if form.cleaned["action"] == "ban":
            require(request, "moderation.ban")
        c = form.cleaned
        try:
            decision = services.decide(
                db,
                settings=settings_of(request),
                moderator=moderator,
                item_type=item.type,
                item_id=item.id,
                action=c["action"],
                ground_id=c["ground"],
                statement=c["statement"],
                suspension_days=c["days"],
                duplicate_of_id=c["duplicate_of"],
                title=c["title"] or None,
                theme_id=c["theme"],
                note=c["note"],
            )
        except ModerationError as exc:
            db.rollback()
            form.add_error(exc.field, exc.message)
        else:
            message = _("Decision recorded: %(action)s.", action=services.action_labels()[decision.action])
            if request.headers.get("hx-request") == "true":
                return render(request, "moderation/_decided.html", message=message, item=item)
            flash(request, message)
            return redirect("/moderation")
    ctx = _decision_context(request, db, item, form)
    return render(
        request, "moderation/item.html", 400, partial="moderation/_decision_form.html", headers=SWAP, **ctx
    )


# --- notices and appeals -------------------------------------------------------------------------------------


@view
def notices(request: Request, db: Session) -> Response:
    user = require(request, "moderation.notices")
    rows = services.notices_for(db, user=user)
    unread = [n for n, _d, _g in rows if n.read_at is None]
    appealable = {d.id for _n, d, _g in rows if services.can_appeal(db, user=user, decision=d)}
    appealed = dict(
        db.execute(
            select(Appeal.decision_id, Appeal.decided_by_decision_id).where(
                Appeal.decision_id.in_([d.id for _n, d, _g in rows])
            )
        ).all()
    )
    response = render(
        request,
        "moderation/notices.html",
        rows=rows,
        appealable=appealable,
        appealed=appealed,
        labels=services.action_labels(),
        types=services.item_type_labels(),
        unread_ids={n.id for n in unread},
    )
    if unread and request.method == "GET":
        now = utcnow()
        for n in unread:
            n.read_at = now
    return response


def _appealable(request: Request, db: Session) -> tuple[User, ModerationDecision]:
    decision = db.get(ModerationDecision, request.path_params["decision_id"])
    if decision is None:
        raise HTTPException(404)
    user = require(request, "moderation.appeal", decision)
    return user, decision


@view
def appeal(request: Request, db: Session) -> Response:
    user, decision = _appealable(request, db)
    ground = db.get(ModerationGround, decision.ground_id) if decision.ground_id else None
    form = AppealForm(form_of(request) if request.method == "POST" else None)
    ctx = dict(
        decision=decision,
        ground=ground,
        labels=services.action_labels(),
        types=services.item_type_labels(),
        allowed=services.can_appeal(db, user=user, decision=decision),
    )
    if request.method == "POST":
        if form.is_valid():
            try:
                services.appeal(db, user=user, decision_id=decision.id, text=form.cleaned["text"])  # type: ignore[arg-type]
            except ModerationError as exc:
                form.add_error(exc.field, exc.message)
            else:
                flash(request, _("Your appeal was received. Another moderator will decide on it."))
                return redirect("/moderation/notices")
        return render(request, "moderation/appeal.html", 400, form=form, **ctx)
    return render(request, "moderation/appeal.html", form=form, **ctx)


@view
def appeal_decide(request: Request, db: Session) -> Response:
    moderator = require(request, "moderation.queue")
    row = db.get(Appeal, request.path_params["appeal_id"])
    if row is None:
        raise HTTPException(404)
    original = db.get(ModerationDecision, row.decision_id)
    assert original is not None
    if not services.can_decide_appeal(moderator, original):
        raise HTTPException(403)
    item = services.load_item(db, item_type=original.item_type, item_id=original.item_id)
    ground = db.get(ModerationGround, original.ground_id) if original.ground_id else None
    form = AppealDecisionForm(form_of(request) if request.method == "POST" else None)
    ctx = dict(
        appeal=row,
        decision=original,
        item=item,
        ground=ground,
        labels=services.action_labels(),
        types=services.item_type_labels(),
    )
    if request.method == "POST":
        if form.is_valid():
            try:
                services.decide_appeal(
                    db,
                    settings=settings_of(request),
                    moderator=moderator,
                    appeal_id=row.id,  # type: ignore[arg-type]
                    outcome=form.cleaned["outcome"],
                    statement=form.cleaned["statement"],
                )
            except ModerationError as exc:
                db.rollback()
                form.add_error(exc.field, exc.message)
            else:
                flash(request, _("The appeal has been decided."))
                return redirect("/moderation")
        return render(request, "moderation/appeal_decide.html", 400, form=form, **ctx)
    return render(request, "moderation/appeal_decide.html", form=form, **ctx)


# --- transparency --------------------------------------------------------------------------------------------


@view
def transparency(request: Request, db: Session) -> Response:
    require(request, "moderation.transparency")
    grounds = {g.code: g for g in db.execute(select(ModerationGround)).scalars()}
    return render(
        request,
        "moderation/transparency.html",
        decisions=queue.transparency(db),
        reports=queue.report_counts(db),
        grounds=grounds,
        labels=services.action_labels(),
        categories=services.category_labels(),
    )


@view
def transparency_csv(request: Request, db: Session) -> Response:
    require(request, "moderation.export")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["kind", "month", "ground_or_category", "outcome", "count"])
    for month, ground, outcome, n in queue.transparency(db):
        writer.writerow(["decision", month, ground, outcome, n])
    for month, category, n in queue.report_counts(db):
        writer.writerow(["report", month, category, "", n])
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="moderation-transparency.csv"',
            "Cache-Control": "no-store",
        },
    )


# --- admin: grounds, pre-moderation, word list -----------------------------------------------------------------


@view
def admin_settings(request: Request, db: Session) -> Response:
    require(request, "moderation.grounds")
    form = SettingsForm(
        form_of(request) if request.method == "POST" else None,
        initial={"words": premoderation.word_list_text(db)},
    )
    themes = list(db.execute(select(Theme).order_by(Theme.position, Theme.id)).scalars())
    grounds = list(db.execute(select(ModerationGround).order_by(ModerationGround.position)).scalars())
    if request.method == "POST":
        data = form_of(request)
        if form.is_valid():
            premoderation.set_word_list(db, words=form.cleaned["words"])
            wanted = {int(v) for v in data.getlist("premoderate") if isinstance(v, str) and v.isdigit()}
            premoderation.set_premoderated_themes(db, theme_ids=wanted & {t.id for t in themes})
            active = {int(v) for v in data.getlist("ground_active") if isinstance(v, str) and v.isdigit()}
            for g in grounds:
                g.active = g.id in active
            flash(request, _("Moderation settings saved."))
            return redirect("/admin/moderation")
        status = 400
    else:
        status = 200
    return render(
        request,
        "moderation/admin.html",
        status,
        form=form,
        themes=themes,
        grounds=grounds,
        premoderated=premoderation.premoderated_themes(db),
    )


@view
def admin_ground_new(request: Request, db: Session) -> Response:
    require(request, "moderation.grounds")
    data = form_of(request)
    code = str(data.get("code", "")).strip()
    title_de = str(data.get("title_de", "")).strip()
    title_en = str(data.get("title_en", "")).strip()
    kind = str(data.get("kind", ""))
    ok = (
        code
        and len(code) <= 64
        and code.replace("-", "").isalnum()
        and 0 < len(title_de) <= 200
        and 0 < len(title_en) <= 200
        and kind in ("community-rule", "legal")
    )
    if not ok or db.execute(select(ModerationGround.id).where(ModerationGround.code == code)).first():
        flash(
            request,
            _("Please fill in a new code (letters, digits, hyphens), both titles and the kind."),
            "error",
        )
        return redirect("/admin/moderation")
    position = len(list(db.execute(select(ModerationGround.id)).scalars()))
    db.add(ModerationGround(code=code, title_de=title_de, title_en=title_en, kind=kind, position=position))
    flash(request, _("Ground added."))
    return redirect("/admin/moderation")


routes = [
    Route("/report/{item_type:str}/{item_id:int}", report, methods=["GET", "POST"], name="moderation_report"),
    Route("/moderation", queue_page, name="moderation_queue"),
    Route("/moderation/items/{item_type:str}/{item_id:int}", item_page, name="moderation_item"),
    Route(
        "/moderation/items/{item_type:str}/{item_id:int}/decide",
        decide,
        methods=["POST"],
        name="moderation_decide",
    ),
    Route("/moderation/notices", notices, name="moderation_notices"),
    Route(
        "/moderation/decisions/{decision_id:int}/appeal",
        appeal,
        methods=["GET", "POST"],
        name="moderation_appeal",
    ),
    Route(
        "/moderation/appeals/{appeal_id:int}",
        appeal_decide,
        methods=["GET", "POST"],
        name="moderation_appeal_decide",
    ),
    Route("/transparency", transparency, name="moderation_transparency"),
    Route("/transparency.csv", transparency_csv, name="moderation_transparency_csv"),
    Route("/admin/moderation", admin_settings, methods=["GET", "POST"], name="moderation_admin"),
    Route("/admin/moderation/grounds", admin_ground_new, methods=["POST"], name="moderation_ground_new"),
]
