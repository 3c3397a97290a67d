"""Helpers shared by the council staff pages (voting/admin_routes.py, admin_project_routes.py,
admin_report_routes.py): the process of the URL (unknown or impossible id → 404) with its permission check, and
the theme areas and districts for forms and filters. Importing this module registers the staff permissions
(voting/permissions_staff.py).
"""

from __future__ import annotations

from sqlmodel import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request

from app.i18n import get_locale
from app.permissions import require
from voting import permissions_staff as _perms  # noqa: F401  (registers the permissions)
from voting.models import Process

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


def _districts(db: Session) -> list[tuple[int, str]]:
    from proposals import services as proposal_services

    return [
        (d.id, d.name) for d in proposal_services.districts(db, include_inactive=True) if d.id is not None
    ]
