"""Moderation test setup: the default grounds after every reset, the visibility filters installed, and the
moderation routes mounted on the test app (the composition root mounts them in production)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from app.database import new_session, utcnow
from app.main import create_app
from moderation import routes as moderation_routes
from moderation import services
from moderation import visibility as moderation_visibility
from moderation.models import Flag, ModerationGround
from tests.conftest import make_settings

moderation_visibility.install()


@pytest.fixture
def db(database):
    from tests.conftest import reset_database

    reset_database(database)
    with new_session(database.engine) as session:
        services.ensure_default_grounds(session)
        session.commit()
    return database


@pytest.fixture
def app(db, settings_overrides, smtp_settings):
    application = create_app(make_settings(db, **{**smtp_settings, **settings_overrides}), engine=db.engine)
    names = {getattr(r, "name", None) for r in application.router.routes}
    if "moderation_queue" not in names:
        application.router.routes[0:0] = moderation_routes.routes
    from voting import platform_log

    platform_log.install(application.state.settings)
    return application


def ground_id(db, code: str = "rules-respect") -> int:
    with new_session(db.engine) as s:
        return s.execute(select(ModerationGround.id).where(ModerationGround.code == code)).scalar_one()


def decide(client, item_type: str, item_id: int, **data):
    return client.post_form(
        f"/moderation/items/{item_type}/{item_id}/decide", {k: str(v) for k, v in data.items()}
    )


def hide_item(
    client, db, item_type: str, item_id: int, *, ground: str = "stgb-185", statement: str = "Beleidigung."
):
    """Post a hide decision with a ground (by code) and a statement, as the logged-in user."""
    return decide(
        client, item_type, item_id, action="hide", ground=ground_id(db, ground), statement=statement
    )


def file_flags(
    db, item_type: str, item_id: int, n: int = 1, *, category: str = "insult", age_days: int | None = None
) -> None:
    """Store ``n`` open reports of one item, each from its own reporter; ``age_days`` back-dates them."""
    with new_session(db.engine) as s:
        for k in range(n):
            flag = Flag(
                reporter_key=f"u:{item_type}{item_id}-{category}-{k}",
                item_type=item_type,
                item_id=item_id,
                category=category,
            )
            if age_days is not None:
                flag.created_at = utcnow() - dt.timedelta(days=age_days)
            s.add(flag)
        s.commit()
