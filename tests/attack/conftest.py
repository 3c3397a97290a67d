"""Shared set-up of the attack tests: a small "world" of real objects (proposals, comments, an attachment,
a notification, a budget process with a paper ballot, a moderation decision and its appeal), one signed-in
client per role, route enumeration from the app's routing table, and row-count snapshots of every table.

Roles: ``anonymous``, ``resident`` (the author of the own proposal and comments), ``other`` (another
resident), ``moderator``, ``staff``, ``admin``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from sqlalchemy import func, select, text
from starlette.routing import Mount, Route

from app.database import new_session
from app.models import Role, User
from tests.conftest import Client

ROLES = ("anonymous", "resident", "other", "moderator", "staff", "admin")
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


@pytest.fixture
def settings_overrides(tmp_path):
    return {"data_dir": str(tmp_path / "data")}


@dataclass
class World:
    users: dict[str, User]
    ids: dict[str, int | str]
    clients: dict[str, Client] = field(default_factory=dict)


def _pdf() -> bytes:
    return (
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    )


def build_world(db, app, make_user) -> World:
    """Real objects for every kind of path parameter, owned by the resident where ownership matters."""
    from moderation import services as moderation
    from proposals import attachments, notifications
    from proposals.models import District, Notification, Proposal, ProposalStatus, Theme
    from tests.proposals.factories import make_comment, make_proposal
    from tests.voting.test_ballots import make_process
    from voting import paper
    from voting.models import PaperBallot, Process, Project

    settings = app.state.settings
    users = {
        "resident": make_user(Role.RESIDENT, name="Rita Resident"),
        "other": make_user(Role.RESIDENT, name="Otto Other"),
        "moderator": make_user(Role.MODERATOR, name="Mona Moderator"),
        "staff": make_user(Role.STAFF, name="Stefan Staff"),
        "admin": make_user(Role.ADMIN, name="Ada Admin"),
    }
    resident, other = users["resident"], users["other"]
    own = make_proposal(db, resident, title="Eigener Vorschlag")
    draft = make_proposal(db, resident, title="Entwurf", status=ProposalStatus.DRAFT)
    others = make_proposal(db, other, title="Fremder Vorschlag")
    own_comment = make_comment(db, others, resident, "Mein Kommentar")
    other_comment = make_comment(db, own, other, "Fremder Kommentar")
    hidden_comment = make_comment(db, others, resident, "Versteckter Kommentar")
    process = make_process(db)
    with new_session(db.engine, write=True) as s:
        first_project = (
            s.execute(select(Project.id).where(Project.process_id == process.id).order_by(Project.id))
            .scalars()
            .first()
        )
        proposal = s.get(Proposal, own.id)
        [attachment] = attachments.store(
            s,
            proposal=proposal,
            uploader=s.get(User, resident.id),
            uploads=[attachments.check_file("plan.pdf", _pdf(), settings=settings)],
            settings=settings,
        )
        notifications.notify_users(s, user_ids=[resident.id], kind="comment", proposal=proposal, comment=None)
        entry = paper.enter_paper(
            s,
            process=s.get(Process, process.id),
            staff=s.get(User, users["staff"].id),
            scope=0,
            polling_station="Rathaus Barmen",
            reference="A-0001",
            selection=[first_project],
        )
        decision = moderation.decide(
            s,
            settings=settings,
            moderator=s.get(User, users["moderator"].id),
            item_type="comment",
            item_id=hidden_comment.id,
            action="hide",
            ground_id=moderation.active_grounds(s)[0].id,
            statement="Beleidigend.",
        )
        appeal = moderation.appeal(
            s, user=s.get(User, resident.id), decision_id=decision.id, text="Das war sachlich."
        )
        s.commit()
        ids = {
            "attachment": attachment.id,
            "notification": s.execute(select(func.max(Notification.id))).scalar_one(),
            "paper": entry.id,
            "decision": decision.id,
            "appeal": appeal.id,
            "project": first_project,
            "theme": s.execute(select(Theme.id).order_by(Theme.id)).scalars().first(),
            "district": s.execute(select(District.id).order_by(District.id)).scalars().first(),
            "theme_slug": s.execute(select(Theme.slug).order_by(Theme.id)).scalars().first(),
        }
        assert s.get(PaperBallot, entry.id) is not None
    ids.update(
        proposal=own.id,
        draft=draft.id,
        others_proposal=others.id,
        comment=own_comment.id,
        others_comment=other_comment.id,
        hidden_comment=hidden_comment.id,
        process=process.id,
        user=other.id,
        register=999_999,  # no verification register exists: the route must still check the role first
    )
    return World(users=users, ids=ids)


@pytest.fixture
def world(db, app, make_user) -> Iterator[World]:
    """The world plus one client per role (the non-anonymous ones signed in)."""
    built = build_world(db, app, make_user)
    opened = []
    for role in ROLES:
        c = Client(app, base_url="http://testserver", follow_redirects=False, raise_server_exceptions=False)
        c.__enter__()
        opened.append(c)
        if role != "anonymous":
            sign_in(c, built.users[role])
        built.clients[role] = c
    yield built
    for c in opened:
        c.__exit__(None, None, None)


def sign_in(c: Client, user: User) -> None:
    from tests.conftest import PASSWORD

    c.cookies.clear()
    response = c.post_form("/login", {"email": user.email, "password": PASSWORD})
    assert response.status_code == 303, response.text


# --- routes -----------------------------------------------------------------------------------------------


def app_routes(app) -> list[tuple[str, str]]:
    """(method, path template) of every route in the routing table; HEAD and OPTIONS are left out (they
    follow GET), Mounts (static files) too."""
    found = []
    for route in app.routes:
        if isinstance(route, Mount):
            continue
        assert isinstance(route, Route), route
        for method in sorted((route.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((method, route.path))
    return found


# which object a path parameter names, by route prefix and parameter name
PARAM_VALUES = {
    "user_id": "user",
    "proposal_id": "proposal",
    "attachment_id": "attachment",
    "obj_id": None,  # theme or district, by path
    "comment_id": "comment",
    "notification_id": "notification",
    "process_id": "process",
    "paper_id": "paper",
    "project_id": "project",
    "decision_id": "decision",
    "appeal_id": "appeal",
    "register_id": "register",
}
# no identity provider is configured in tests: every provider key is unknown
STRING_PARAMS = {
    "token": "not-a-valid-token",
    "purpose": "gdpr_export",  # re-authentication by e-mail (app/accounts/reauth.py)
    "key": "keycloak",
    "slug": None,
    "item_type": "comment",
    "step": "destroy-links",
    "fmt": "csv",
    "kind": "proposals",
}


def fill(template: str, world: World) -> str:
    """A concrete path for ``template`` naming the world's objects."""

    def one(match: re.Match) -> str:
        name = match.group(1)
        if name == "obj_id":
            return str(world.ids["district" if "/districts/" in template else "theme"])
        if name == "id":
            return str(world.ids["process" if "/processes/" in template else "proposal"])
        if name == "item_id":
            return str(world.ids["others_comment"])
        if name == "slug":
            return str(world.ids["theme_slug"]) if template.startswith("/themes/") else "impressum"
        if name in STRING_PARAMS:
            return str(STRING_PARAMS[name])
        if name in PARAM_VALUES and PARAM_VALUES[name]:
            return str(world.ids[PARAM_VALUES[name]])
        raise AssertionError(f"tests/attack/conftest.py: no value for path parameter {name!r} in {template}")

    return re.sub(r"\{(\w+)(?::\w+)?\}", one, template)


# --- row counts -------------------------------------------------------------------------------------------


def row_counts(db) -> dict[str, int]:
    """Rows per table (every table of the metadata, in one query), to prove that rejected input changed
    nothing."""
    union = " UNION ALL ".join(
        f"SELECT '{t}', COUNT(*) FROM \"{t}\""
        for t in db.tables  # noqa: S608 names from the metadata
    )
    with db.engine.connect() as conn:
        return {name: count for name, count in conn.execute(text(union))}
