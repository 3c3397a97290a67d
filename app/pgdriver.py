"""psycopg's cursor with a cached ``description`` (PostgreSQL only; imported when the engine is built).

SQLAlchemy reads ``cursor.description`` after every statement, and psycopg builds it anew each time: one
``Column`` per result column, each decoding its name and looking its type up in the adapters map. For the
hot statements of a vote (the session and its user, the process: 13 columns on average) that was about a
tenth of the app's CPU time per ballot on PostgreSQL (``python -m bench.cast_cpu --db postgresql
--profile``). A description depends only on the result's column names, type OIDs, modifiers and sizes, so
the columns are built once per distinct shape and the list is copied for each caller.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import Column

MAX_SHAPES = 1024  # distinct result shapes kept; the cache starts afresh when full


class DescribedCursor(psycopg.Cursor):
    """A psycopg cursor whose ``description`` is served from a per-process cache of result shapes."""

    _shapes: dict[tuple[Any, ...], list[Column]] = {}

    @property
    def description(self) -> list[Column] | None:
        res = self.pgresult
        if res is None or not res.nfields:
            return super().description  # no result, or none with columns: as psycopg answers
        key = (
            self._encoding,
            *((res.fname(i), res.ftype(i), res.fmod(i), res.fsize(i)) for i in range(res.nfields)),
        )
        columns = self._shapes.get(key)
        if columns is None:
            columns = super().description or []
            if len(self._shapes) >= MAX_SHAPES:
                self._shapes.clear()
            self._shapes[key] = columns
        return list(columns)
