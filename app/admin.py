"""The administration area: dashboard, users and roles, and the editable pages (imprint, privacy, rules)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlmodel import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app import forms
from app.accounts import services, twofactor
from app.database import utcnow
from app.forms import FieldError, Form
from app.i18n import gettext as _
from app.i18n import lazy
from app.models import Page, Role, User
from app.permissions import require
from app.web import flash, form_of, redirect, render, view

PAGE_SIZE = 50
ROLE_LABELS = [lazy("resident"), lazy("moderator"), lazy("staff"), lazy("admin")]  # for extraction


def _int_param(value: Any, default: int = 0, *, lo: int = 0, hi: int = 10**9) -> int:
    """Numeric query parameters are parsed, never echoed (CVE-2024-32469)."""
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return default
    return min(max(number, lo), hi)


@view
def dashboard(request: Request, db: Session) -> Response:
    require(request, "admin.access")
    return render(request, "app/admin/dashboard.html", sections=request.app.state.admin_sections)


@view
def users(request: Request, db: Session) -> Response:
    require(request, "admin.users")
    query = str(request.query_params.get("q", ""))[:100]
    role = request.query_params.get("role", "")
    role = role if role in {r.value for r in Role} else ""
    page = _int_param(request.query_params.get("page"), 1, lo=1, hi=100000)
    rows, total = services.search_users(
        db, query=query, role=role, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE
    )
    return render(
        request,
        "app/admin/users.html",
        users=rows,
        total=total,
        q=query,
        role=role,
        page=page,
        pages=max(1, -(-total // PAGE_SIZE)),
        roles=[r.value for r in Role],
        two_factor_ids=twofactor.enabled_user_ids(db, [u.id for u in rows]),
        partial="app/admin/_user_rows.html",
    )


def _target(db: Session, user_id: int) -> User:
    target = db.get(User, user_id)
    if target is None or target.is_deleted:
        raise HTTPException(404)
    return target


@view
def user_role(request: Request, db: Session) -> Response:
    actor = require(request, "admin.users")
    target = _target(db, request.path_params["user_id"])
    try:
        services.change_role(db, actor=actor, target=target, role=str(form_of(request).get("role", "")))
    except services.AccountError as exc:
        flash(request, str(exc), "error")
        return redirect("/admin/users", 303)
    flash(request, _("Role of %(name)s set to %(role)s.", name=target.display_name, role=_(target.role)))
    return redirect("/admin/users")


@view
def user_suspend(request: Request, db: Session) -> Response:
    actor = require(request, "admin.users")
    target = _target(db, request.path_params["user_id"])
    days = _int_param(form_of(request).get("days"), -1, lo=-1, hi=3650)
    if days < 0:
        flash(request, _("Please enter a number of days between 0 and 3650."), "error")
        return redirect("/admin/users")
    try:
        services.suspend(db, actor=actor, target=target, days=days)
    except services.AccountError as exc:
        flash(request, str(exc), "error")
        return redirect("/admin/users")
    flash(request, _("Suspension of %(name)s updated.", name=target.display_name))
    return redirect("/admin/users")


class PageForm(Form):
    fields = ("title_de", "title_en", "body_de", "body_en", "in_footer")

    def clean_title_de(self, v: Any) -> str:
        return forms.text(v, min_len=2, max_len=140)

    def clean_title_en(self, v: Any) -> str:
        return forms.text(v, min_len=2, max_len=140)

    def clean_body_de(self, v: Any) -> str:
        return forms.text(v, required=False, max_len=50000)

    def clean_body_en(self, v: Any) -> str:
        return forms.text(v, required=False, max_len=50000)

    def clean_in_footer(self, v: Any) -> bool:
        if v not in ("", "on", None):
            raise FieldError(_("Please choose one of the options."))
        return v == "on"


@view
def pages(request: Request, db: Session) -> Response:
    require(request, "admin.pages")
    rows = list(db.execute(select(Page).order_by(Page.position, Page.id)).scalars())
    return render(request, "app/admin/pages.html", pages=rows)


@view
def page_edit(request: Request, db: Session) -> Response:
    require(request, "admin.pages")
    page = db.execute(select(Page).where(Page.slug == request.path_params["slug"])).scalar_one_or_none()
    if page is None:
        raise HTTPException(404)
    if request.method == "GET":
        form = PageForm(initial={f: getattr(page, f) for f in PageForm.fields})
        form.initial["in_footer"] = "on" if page.in_footer else ""
        return render(request, "app/admin/page_edit.html", page=page, form=form)
    form = PageForm(form_of(request))
    if not form.is_valid():
        return render(request, "app/admin/page_edit.html", 400, page=page, form=form)
    for name, value in form.cleaned.items():
        setattr(page, name, value)
    page.updated_at = utcnow()
    flash(request, _("The page has been saved."))
    return redirect("/admin/pages")


@view
def page_view(request: Request, db: Session) -> Response:
    page = db.execute(select(Page).where(Page.slug == request.path_params["slug"])).scalar_one_or_none()
    if page is None:
        raise HTTPException(404)
    return render(request, "app/page.html", page=page)


routes = [
    Route("/admin", dashboard, name="admin"),
    Route("/admin/users", users, name="admin_users"),
    Route("/admin/users/{user_id:int}/role", user_role, methods=["POST"], name="admin_user_role"),
    Route("/admin/users/{user_id:int}/suspend", user_suspend, methods=["POST"], name="admin_user_suspend"),
    Route("/admin/pages", pages, name="admin_pages"),
    Route("/admin/pages/{slug:str}", page_edit, methods=["GET", "POST"], name="admin_page_edit"),
    Route("/pages/{slug:str}", page_view, name="page"),
]
