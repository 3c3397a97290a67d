"""Alembic environment: metadata from every package's models, URL from the app settings."""

from __future__ import annotations

import importlib

from alembic import context
from sqlalchemy import Connection
from sqlmodel import SQLModel

from app.database import make_engine
from app.main import models_modules
from app.migrations import include_object
from app.settings import Settings

for module in models_modules():
    importlib.import_module(module)

target_metadata = SQLModel.metadata
config = context.config


def _url() -> str:
    return config.attributes.get("database_url") or Settings.from_env().effective_database_url


def _configure(connection: Connection | None = None, url: str | None = None) -> None:
    context.configure(
        include_object=include_object,
        connection=connection,
        url=url,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        literal_binds=connection is None,
    )


def run_migrations_offline() -> None:
    _configure(url=_url())
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(Settings.from_env(database_url=_url()))
    with engine.connect() as conn:
        _configure(conn)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
