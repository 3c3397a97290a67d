"""Moderation test setup: the default grounds after every reset, the visibility filters installed, and the
moderation routes mounted on the test app (the composition root mounts them in production)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.database import new_session
from app.main import create_app
from moderation import routes as moderation_routes
from moderation import services
from moderation import visibility as moderation_visibility
from moderation.models import ModerationGround
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
