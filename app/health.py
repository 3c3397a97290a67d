"""Health endpoints for load balancers and orchestrators.

``/healthz``: the process is up (no database access). ``/readyz``: the database answers and its schema is
at the migration head of this code; 503 with the reason otherwise, so a new release's workers take no
traffic before ``mitmachen migrate`` ran.
"""

from __future__ import annotations

import functools
import logging

from sqlalchemy import Engine, text
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

log = logging.getLogger("mitmachen.health")
NO_STORE = {"Cache-Control": "no-store"}


@functools.cache
def script_heads() -> frozenset[str]:
    """The migration heads of this code (read once per process)."""
    from alembic.script import ScriptDirectory

    from app.migrations import alembic_config

    return frozenset(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


def readiness(engine: Engine) -> tuple[bool, str]:
    from alembic.runtime.migration import MigrationContext

    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            current = set(MigrationContext.configure(conn).get_current_heads())
    except Exception as exc:
        log.warning("readiness: database unreachable: %s", type(exc).__name__)
        return False, "database unreachable"
    heads = script_heads()
    if current != heads:
        have, want = ",".join(sorted(current)) or "nothing", ",".join(sorted(heads))
        return False, f"database schema at {have}, code expects {want}: run 'mitmachen migrate'"
    return True, "ok"


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok", headers=NO_STORE)


async def readyz(request: Request) -> Response:
    ok, reason = await run_in_threadpool(readiness, request.app.state.engine)
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "reason": reason},
        status_code=200 if ok else 503,
        headers=NO_STORE,
    )
