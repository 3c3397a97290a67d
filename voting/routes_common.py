"""Helpers shared by the vote pages (voting/routes.py) and the staff lifecycle and paper-ballot pages
(voting/staff_routes.py): the process of the URL and the chosen ballot (scope).
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request

from voting import lifecycle
from voting.forms import parse_scope
from voting.lifecycle import Scope
from voting.models import Process


def _process(request: Request, db: Session) -> Process:
    process = db.get(Process, request.path_params["process_id"])
    if process is None:
        raise HTTPException(404)
    return process


def _process_row(db: Session, model: Any, process: Process, row_id: int) -> Any:
    """The row ``row_id`` of ``model`` (a project, a paper ballot) if it belongs to ``process``, else 404.
    Path ids are at most 9 digits (app/__init__.py, ``DatabaseIdConvertor``), so the lookup cannot overflow."""
    row = db.get(model, row_id)
    if row is None or row.process_id != process.id:
        raise HTTPException(404)
    return row


def _scope(request: Request, db: Session, process: Process, value: Any = None) -> Scope:
    all_scopes = lifecycle.scopes(db, process)
    raw = value if value is not None else request.query_params.get("scope", "0")
    sid = parse_scope(raw, [s.id for s in all_scopes])
    if sid is None:
        raise HTTPException(404)
    return next(s for s in all_scopes if s.id == sid)
