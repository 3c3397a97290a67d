"""Hypothesis-driven fuzzing of every form handler: for every route that accepts POST (from the routing
table), random field names and values (NUL bytes, invalid UTF-8, huge values, control characters, SQL and
markup fragments) in random encodings (urlencoded, multipart, wrong charset), with a valid CSRF token, as a
role that may use the route (from tests/attack/route_table.py).

Asserts: never a 5xx; and when the input is refused (4xx), no row in any table changed.
SECURITY.md rows: ASVS V2.2.1 (positive server-side validation), ASVS V2.3.3 (nothing half-written).
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.attack.conftest import World, app_routes, fill, row_counts
from tests.attack.route_table import RUN_LATE, SESSION_ENDING, TABLE

EXAMPLES = 6
# field names the forms really read, so that the fuzzer reaches the validators and not only "missing field"
KNOWN = [
    "email", "password", "password2", "display_name", "locale", "next", "title", "summary", "body", "theme",
    "district", "address", "lat", "lon", "cost", "action", "to", "reason", "value", "parent_id", "category",
    "explanation", "ground", "statement", "days", "outcome", "text", "words", "slug", "name", "position",
    "budget", "ballot_type", "project", "scope", "polling_station", "reference", "receipt", "role", "confirm",
    "title_de", "body_de", "district_id", "code", "token", "description", "voting_starts_at", "min_choices",
]  # fmt: skip
NASTY = st.sampled_from(
    [
        "", "0", "-1", "1e309", "NaN", "99999999999999999999", "1" * 400, "x" * 70_000, "\x00", "a\x00b",
        "\ud800", "' OR 1=1 --", "<script>alert(1)</script>", "../../etc/passwd", "%00", "\r\nX: y",
        "2027-13-45T25:61", "true", "on", "[]", "{}", "\u202e\u200b", "ä" * 3000,
    ]
)  # fmt: skip
VALUES = st.one_of(NASTY, st.text(max_size=40), st.integers(min_value=-(2**70), max_value=2**70).map(str))
FIELDS = st.dictionaries(
    st.one_of(st.sampled_from(KNOWN), st.text(min_size=1, max_size=12)), VALUES, max_size=6
)
ENCODINGS = st.sampled_from(["urlencoded", "multipart", "latin1", "invalid-utf8", "json"])


def _allowed_role(method: str, template: str) -> str:
    """A role the table lets through (not refused), so the fuzzer reaches the handler's validation."""
    expected = TABLE[(method, template)]
    for role in ("resident", "admin", "staff", "moderator", "other", "anonymous"):
        if not expected[role] & {303, 403, 404} or role == "admin":
            return role
    return "admin"


def _send(c, path: str, token: str, fields: dict[str, str], encoding: str):
    if encoding == "multipart":
        files = {k or "f": (None, v.encode("utf-8", "surrogatepass")) for k, v in fields.items()}
        return c.post(path, data={"csrf_token": token}, files=files or {"f": (None, b"")})
    if encoding == "json":
        import json

        return c.post(
            path,
            content=json.dumps(fields),
            headers={"X-CSRF-Token": token, "Content-Type": "application/json"},
        )
    from urllib.parse import quote_from_bytes

    def enc(s: str) -> bytes:
        raw = s.encode("utf-8", "surrogatepass")
        if encoding == "latin1":
            return s.encode("latin-1", "replace")
        if encoding == "invalid-utf8":
            return raw + b"\xff\xfe\xc3"
        return raw

    body = "&".join(f"{quote_from_bytes(enc(k))}={quote_from_bytes(enc(v))}" for k, v in fields.items())
    ctype = "application/x-www-form-urlencoded" + ("; charset=latin-1" if encoding == "latin1" else "")
    return c.post(path, content=body.encode(), headers={"X-CSRF-Token": token, "Content-Type": ctype})


def test_every_form_handler_survives_random_input(world: World, app, db):
    """ASVS V2.2.1: every POST handler answers random fields and encodings with a 2xx/3xx/4xx, never a 5xx,
    and a refused (4xx) submission leaves every table as it was."""
    routes = [
        (m, t)
        for m, t in app_routes(app)
        if m == "POST" and (m, t) in TABLE and (m, t) not in SESSION_ENDING | RUN_LATE
    ]
    assert len(routes) >= 40
    tokens = {role: c.csrf("/") for role, c in world.clients.items()}
    problems: list[str] = []
    for method, template in routes:
        role = _allowed_role(method, template)
        _fuzz_route(
            world.clients[role],
            fill(template, world),
            tokens[role],
            f"{method} {template} as {role}",
            db,
            problems,
        )
    assert not problems, "\n".join(problems[:30])


def _fuzz_route(c, path: str, token: str, label: str, db, problems: list[str]) -> None:
    @settings(
        max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
        suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    @given(fields=FIELDS, encoding=ENCODINGS)
    def fuzz(fields, encoding):
        before = row_counts(db)
        status = _send(c, path, token, fields, encoding).status_code
        if status >= 500:
            problems.append(f"{label} ({encoding}, {fields!r:.200}): {status}")
        elif 400 <= status < 500 and status != 429:
            after = row_counts(db)
            changed = {
                t: (before[t], after[t]) for t in before if before[t] != after[t] and t not in VOLATILE
            }
            if changed:
                problems.append(f"{label}: refused with {status} but changed {changed}")

    fuzz()


# tables a refused request may touch: rate-limit buckets, sessions, queued mail, the platform log of denials
# and the pending TOTP secret that the two-factor enrolment page draws whenever it renders (errors included)
VOLATILE = {"user_session", "rate_limit", "rate_limit_hit", "log_entry", "mail_outbox", "totp_credential"}
