"""Migrations: models and migrations never drift; the latest revision downgrades and upgrades again."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from app.migrations import alembic_config, include_object, is_current


def test_models_match_migrations(db):
    """The same check as `alembic check`: no difference between the models and the migrated schema."""
    with db.engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True, "include_object": include_object}),
            SQLModel.metadata,
        )
    assert diff == []
    assert is_current(db.engine)


def test_one_head():
    """Branches made in parallel are merged: main has exactly one Alembic head."""
    from alembic.script import ScriptDirectory

    assert len(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()) == 1


def test_downgrade_latest_and_upgrade_again(tmp_path):
    """The newest revision can be rolled back and re-applied (documented upgrade path)."""
    url = f"sqlite:///{tmp_path / 'm.sqlite3'}"
    cfg = alembic_config(url)
    command.upgrade(cfg, "heads")
    command.downgrade(cfg, "-1")
    command.upgrade(cfg, "heads")
    command.downgrade(cfg, "base")
    command.upgrade(cfg, "heads")
