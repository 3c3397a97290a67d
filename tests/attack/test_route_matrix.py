"""The route × role matrix: every route of the app (read from create_app().routes), with every role, against
the declared expectations in tests/attack/route_table.py.

GET for pages; POST with a valid CSRF token and an empty body for unsafe routes. A route that is missing
from the table fails the test, naming the entry to add, so a new admin route can never go unchecked.
Expectations are never read from the app: they are written down by hand from the permission table in
docs/security.md.

SECURITY.md rows: CVE-2023-36465 (every admin route checked server-side, for every role), CVE-2026-40869 /
ASVS V8.2.1, V8.2.2 (function- and object-level checks: own vs. someone else's object), CVE-2023-47635
(the token is valid, so what answers is the permission check, not CSRF).
"""

from __future__ import annotations

import os

import pytest

from tests.attack.conftest import ROLES, World, app_routes, fill, row_counts
from tests.attack.route_table import RUN_LATE, SESSION_ENDING, TABLE

DUMP = os.environ.get("ROUTE_MATRIX_DUMP")  # a file name: write the observed statuses there (for review)


def test_every_route_is_in_the_table(app):
    """CVE-2023-36465: the table covers every route of the app, and names no route that is gone."""
    routes = set(app_routes(app))
    missing = sorted(routes - set(TABLE))
    stale = sorted(set(TABLE) - routes)
    assert not missing, (
        "Routes without an entry in tests/attack/route_table.py (add one: who may use the route, with which "
        "status, for each of anonymous, resident, other, moderator, staff, admin):\n"
        + "\n".join(f"    ({m!r}, {p!r}): ...," for m, p in missing)
    )
    assert not stale, f"tests/attack/route_table.py names routes that no longer exist: {stale}"


def _ordered(routes):
    # pages first, then actions; actions that end the session (logout, delete account) last
    return sorted(routes, key=lambda mp: (mp in SESSION_ENDING, mp in RUN_LATE, mp[0] != "GET"))


@pytest.mark.parametrize("role", ROLES)
def test_route_role_matrix(world: World, app, db, role):
    """CVE-2023-36465 / CVE-2026-40869: each route answers each role with the declared status; never a 5xx;
    a refused POST (3xx to the login page, 4xx) changes no row in any table."""
    c = world.clients[role]
    observed: dict[tuple[str, str], int] = {}
    wrong = []
    token = c.csrf("/")
    for method, template in _ordered([r for r in app_routes(app) if r in TABLE]):
        path = fill(template, world)
        expected = TABLE[(method, template)][role]
        if method == "GET":
            response = c.get(path)
        else:
            before = row_counts(db)
            response = c.post(path, data={"csrf_token": token})
            if (method, template) in SESSION_ENDING:
                token = c.csrf("/")
            refused = response.status_code in (401, 403, 404, 405) or (
                response.status_code in (302, 303) and response.headers["location"].startswith("/login")
            )
            if refused and role != "anonymous" or response.status_code == 403:
                changed = {t: n for t, n in row_counts(db).items() if before[t] != n and t not in VOLATILE}
                if changed:
                    wrong.append(
                        f"{method} {template} as {role}: refused ({response.status_code}) but {changed}"
                    )
        observed[(method, template)] = response.status_code
        if response.status_code >= 500 or response.status_code not in expected:
            wrong.append(
                f"{method} {template} as {role}: {response.status_code}, expected {sorted(expected)}"
            )
    if DUMP:
        with open(f"{DUMP}.{role}", "w") as fh:
            for (method, template), status in observed.items():
                fh.write(f"{method}\t{template}\t{status}\n")
    assert not wrong, "\n".join(wrong)


# Tables that may change on a refused request: sessions touched by the request itself, rate-limit buckets,
# the outgoing mail queue, and the platform log (denied authorisation is logged: ASVS V16.3.2).
VOLATILE = {"user_session", "rate_limit", "rate_limit_hit", "log_entry", "mail_outbox"}
