"""The XSS corpus (tests/attack/xss.py) through every text field that is rendered somewhere, then every page
of the app for every role, the answers to the submissions themselves (error pages re-render the input),
searches, notifications, moderation and audit views, and the mails in the mailbox.

SECURITY.md rows: CVE-2023-32693 (no ``javascript:`` in any link target), CVE-2024-32034 (the corpus through
the log and moderation views), CVE-2026-23891 (display names in comments, mentions, notifications and mail),
CVE-2024-32469 (query parameters never echoed as markup), ASVS V1.2.1, V1.2.2, V1.3.5.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.attack.conftest import ROLES, World, app_routes, fill
from tests.attack.xss import CORPUS, active_content
from tests.proposals.proposal_helpers import form_data
from tests.voting.test_admin_processes import process_form


def _submissions(world: World, db, vector: str) -> list[tuple[str, str, dict]]:
    """(role, path, form) for every text field a user can fill in, each set to ``vector``."""
    ids = world.ids
    short = vector[:130]
    return [
        ("resident", "/account", {"display_name": vector[:60], "district_id": "", "locale": "de"}),
        ("other", "/account", {"display_name": vector[:60], "district_id": "", "locale": "de"}),
        (
            "resident",
            "/proposals/new",
            {**form_data(db, title=short, summary=vector, body=vector, address=short), "action": "publish"},
        ),
        (
            "resident",
            f"/proposals/{ids['proposal']}/edit",
            {**form_data(db, title=short, summary=vector, body=vector)},
        ),
        ("resident", "/proposals/preview", {**form_data(db, title=short, summary=vector, body=vector)}),
        ("other", f"/proposals/{ids['proposal']}/comments", {"body": f"@Rita {vector}"}),
        ("resident", f"/proposals/{ids['others_proposal']}/comments", {"body": vector}),
        ("resident", f"/comments/{ids['comment']}/edit", {"body": vector}),
        (
            "resident",
            f"/report/comment/{ids['others_comment']}",
            {"category": "other", "explanation": vector},
        ),
        (
            "anonymous",
            f"/report/proposal/{ids['others_proposal']}",
            {"category": "spam", "explanation": vector},
        ),
        (
            "moderator",
            f"/moderation/items/comment/{ids['comment']}/decide",
            {"action": "hide", "ground": "1", "statement": vector, "note": vector},
        ),
        ("admin", f"/moderation/appeals/{ids['appeal']}", {"outcome": "confirm", "statement": vector}),
        ("staff", f"/proposals/{ids['others_proposal']}/status", {"to": "under_review", "reason": vector}),
        ("staff", "/staff/processes/new", process_form(db, title=short, description=vector)),
        (
            "staff",
            f"/staff/processes/{ids['process']}/projects/{ids['project']}/edit",
            {"title": short, "description": vector, "cost": "1000", "feasibility_notes": vector},
        ),
        ("staff", f"/staff/processes/{ids['process']}/paper", {"polling_station": short, "reference": short}),
        (
            "admin",
            "/admin/pages/impressum",
            {"title_de": short, "title_en": short, "body_de": vector, "body_en": vector, "in_footer": "on"},
        ),
        (
            "admin",
            f"/admin/themes/{ids['theme']}",
            {
                "slug": "thema-x",
                "name_de": vector[:90],
                "name_en": vector[:90],
                "description_de": vector,
                "description_en": vector,
                "position": "0",
                "is_active": "on",
            },
        ),
        (
            "admin",
            f"/admin/districts/{ids['district']}",
            {"slug": "bezirk-x", "name": vector[:90], "position": "0", "is_active": "on"},
        ),
        ("admin", "/admin/moderation", {"words": vector}),
        ("resident", "/audit/check", {"receipt": vector}),
        ("anonymous", "/password/forgot", {"email": vector}),
        ("anonymous", "/login", {"email": vector, "password": vector, "next": vector}),
    ]


FULL_WALK = (
    1  # the index of the vector that is checked on every page for every role (the others: _sink_pages)
)


def _sink_pages(world: World, extra: list[str]) -> dict[str, list[str]]:
    """The pages that show what _submissions wrote, for the roles that see them."""
    ids, uid = world.ids, world.users["resident"].id
    public = [
        "/",
        "/proposals",
        f"/proposals/{ids['proposal']}",
        f"/proposals/{ids['others_proposal']}",
        f"/users/{uid}",
        "/pages/impressum",
        f"/themes/{ids['theme_slug']}",
        "/processes",
        f"/processes/{ids['process']}",
        "/transparency",
        "/audit/check",
    ]
    return {
        "anonymous": public,
        "resident": [
            *public,
            *extra,
            "/notifications",
            "/moderation/notices",
            "/account",
            f"/processes/{ids['process']}/ballot",
            f"/moderation/decisions/{ids['decision']}/appeal",
        ],
        "other": ["/notifications", f"/proposals/{ids['proposal']}"],
        "moderator": ["/moderation", f"/moderation/items/comment/{ids['others_comment']}"],
        "admin": [
            "/admin/users",
            "/moderation",
            f"/moderation/items/comment/{ids['others_comment']}",
            f"/moderation/items/comment/{ids['comment']}",
            f"/moderation/items/proposal/{ids['others_proposal']}",
            f"/moderation/appeals/{ids['appeal']}",
            "/audit/actors",
            "/proposals/review",
            "/admin/moderation",
            "/admin/config",
            "/admin/pages",
            "/staff/processes",
            f"/staff/processes/{ids['process']}/projects",
            f"/staff/processes/{ids['process']}/paper",
            f"/staff/processes/{ids['process']}/voting",
            "/staff/statistics",
        ],
    }


@pytest.mark.parametrize("vector", CORPUS, ids=[f"v{i}" for i in range(len(CORPUS))])
def test_corpus_never_becomes_markup(world: World, app, db, mailbox, vector):
    """CVE-2023-32693 / CVE-2024-32034 / CVE-2026-23891: a vector typed into any field never comes back as
    a script, an event handler or a script URL: not in the answer to the form, not on any page of the app
    for any role (lists, search, moderation queue, transparency, audit views, notifications), not in mail."""
    found: list[str] = []
    accepted = 0

    def look(where: str, response) -> None:
        assert response.status_code < 500, (where, response.status_code)
        if response.headers.get("content-type", "").startswith("text/html"):
            found.extend(f"{where}: {p}" for p in active_content(response.text))

    tokens = {role: world.clients[role].csrf("/") for role in ROLES}
    for role, path, data in _submissions(world, db, vector):
        c = world.clients[role]
        response = c.post(path, data={**data, "csrf_token": tokens[role]})
        accepted += response.status_code in (200, 303)
        look(f"POST {path} as {role} ({response.status_code})", response)
        htmx = c.post(path, data={**data, "csrf_token": tokens[role]}, headers={"HX-Request": "true"})
        look(f"POST {path} (htmx) as {role}", htmx)
    if "\x00" not in vector:  # NUL is refused by every text field (a 400 re-rendering the form): also fine
        assert accepted >= 12, (
            f"only {accepted} submissions were accepted: the corpus did not reach the pages"
        )
    q = quote(vector)
    extra = [
        f"/proposals?q={q}",
        f"/admin/users?q={q}",
        f"/proposals?page={q}",
        f"/login?next={q}",
        f"/?q={q}",
    ]
    from sqlalchemy import func, select

    from app.database import new_session
    from proposals.models import Comment, Proposal

    with new_session(db.engine) as s:
        newest = s.execute(select(func.max(Proposal.id))).scalar_one()
        comments = list(s.execute(select(Comment.id)).scalars())
    extra += [f"/proposals/{newest}", f"/proposals/{newest}/edit"] + [f"/comments/{cid}" for cid in comments]
    if vector == CORPUS[FULL_WALK]:
        # one vector walks every page of the app for every role
        walk = {role: [fill(t, world) for m, t in app_routes(app) if m == "GET"] + extra for role in ROLES}
    else:
        walk = _sink_pages(world, extra)
    for role, pages in walk.items():
        c = world.clients[role]
        for path in pages:
            look(f"GET {path} as {role}", c.get(path, follow_redirects=path.startswith("/comments/")))
    for msg in mailbox.messages:
        assert "\n" not in str(msg["Subject"]) and "\r" not in str(msg["Subject"])
        html_part = msg.get_body(preferencelist=("html",))
        if html_part is not None:
            found.extend(f"mail {msg['Subject']}: {p}" for p in active_content(html_part.get_content()))
    assert not found, "\n".join(sorted(set(found))[:40])
