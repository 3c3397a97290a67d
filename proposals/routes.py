"""Home page, theme pages, the admin pages for theme areas and districts, and (collected from the
proposal modules) every proposal route."""

from __future__ import annotations

from sqlmodel import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.i18n import gettext as _
from app.permissions import require
from app.web import flash, form_of, redirect, render, view
from proposals import action_routes, listing, profiles, proposal_routes, services
from proposals import permissions as _permissions  # noqa: F401  (registers the proposal permissions)
from proposals.forms import DistrictForm, ThemeForm
from proposals.models import District, Theme
from proposals.proposal_views import LIST_HEADERS, list_context, results_partial


@view
def home(request: Request, db: Session) -> Response:
    return render(
        request,
        "proposals/home.html",
        themes=services.themes(db),
        activity=listing.theme_activity(db, days=30),
        latest=listing.latest(db, limit=5),
    )


@view
def theme_page(request: Request, db: Session) -> Response:
    theme = services.theme_by_slug(db, request.path_params["slug"])
    if theme is None or not theme.is_active:
        raise HTTPException(404)
    return render(
        request,
        "proposals/theme.html",
        partial=results_partial(request),
        headers=dict(LIST_HEADERS),
        theme=theme,
        counts=listing.theme_counts(db, theme=theme),
        **list_context(request, db, theme=theme),
    )


@view
def admin_config(request: Request, db: Session) -> Response:
    require(request, "admin.config")
    return render(
        request,
        "proposals/admin/config.html",
        themes=services.themes(db, include_inactive=True),
        districts=services.districts(db, include_inactive=True),
    )


def _edit(request: Request, db: Session, *, model, form_cls, template: str, save, key: str) -> Response:
    require(request, "admin.config")
    obj_id = request.path_params.get("obj_id")
    obj = db.get(model, obj_id) if obj_id is not None else None
    if obj_id is not None and obj is None:
        raise HTTPException(404)
    if request.method == "GET":
        initial = {f: getattr(obj, f) for f in form_cls.fields} if obj else {"is_active": True}
        initial["is_active"] = "on" if initial.get("is_active") else ""
        return render(request, template, obj=obj, form=form_cls(initial=initial))
    form = form_cls(form_of(request))
    if form.is_valid():
        try:
            save(db, **{key: obj}, **form.cleaned)
        except services.ConfigError as exc:
            form.add_error(exc.field, str(exc))
    if form.errors:
        return render(request, template, 400, obj=obj, form=form)
    flash(request, _("Saved."))
    return redirect("/admin/config")


@view
def theme_edit(request: Request, db: Session) -> Response:
    return _edit(
        request,
        db,
        model=Theme,
        form_cls=ThemeForm,
        template="proposals/admin/theme_edit.html",
        save=services.save_theme,
        key="theme",
    )


@view
def district_edit(request: Request, db: Session) -> Response:
    return _edit(
        request,
        db,
        model=District,
        form_cls=DistrictForm,
        template="proposals/admin/district_edit.html",
        save=services.save_district,
        key="district",
    )


routes = [
    *action_routes.routes,
    *proposal_routes.routes,
    *profiles.routes,
    Route("/", home, name="home"),
    Route("/themes/{slug:str}", theme_page, name="theme"),
    Route("/admin/config", admin_config, name="admin_config"),
    Route("/admin/themes/new", theme_edit, methods=["GET", "POST"], name="admin_theme_new"),
    Route("/admin/themes/{obj_id:int}", theme_edit, methods=["GET", "POST"], name="admin_theme_edit"),
    Route("/admin/districts/new", district_edit, methods=["GET", "POST"], name="admin_district_new"),
    Route(
        "/admin/districts/{obj_id:int}", district_edit, methods=["GET", "POST"], name="admin_district_edit"
    ),
]
