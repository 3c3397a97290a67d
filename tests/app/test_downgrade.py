"""The documented upgrade path (docs/operations-data.md): `mitmachen migrate` upgrades, and the newest
revisions can be rolled back one step at a time, on SQLite and PostgreSQL.

For the latest revision, and for every revision after 0006 that changes the schema, the test checks that
``downgrade`` leaves exactly the schema an upgrade to the previous revision builds (tables, columns,
indexes), and that upgrading again reaches the head's schema.
"""

from __future__ import annotations

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from app.migrations import alembic_config
from tests.conftest import BACKENDS, _create_pg_database, _drop_pg_database

FIRST_CHECKED = "0007"  # older revisions are covered by test_migrations' downgrade to base


@pytest.fixture(params=BACKENDS)
def empty_urls(request, tmp_path):
    """A factory of URLs of new, empty databases of one backend."""
    made: list[str] = []

    def new(label: str) -> str:
        if request.param == "postgresql":
            url, name = _create_pg_database()
            made.append(name)
            return url
        return f"sqlite:///{tmp_path / f'{label}.sqlite3'}"

    yield new
    for name in made:
        _drop_pg_database(name)


def schema(url: str) -> dict[str, tuple]:
    engine = create_engine(url)
    try:
        insp = inspect(engine)
        out = {}
        for table in sorted(insp.get_table_names()):
            if table == "alembic_version" or table.startswith("proposal_search"):
                continue
            out[table] = (
                sorted(
                    (c["name"], str(c["type"]).split("(")[0], bool(c["nullable"]))
                    for c in insp.get_columns(table)
                ),
                sorted(i["name"] or "" for i in insp.get_indexes(table)),
            )
        return out
    finally:
        engine.dispose()


def checked_revisions() -> list[tuple[str, str]]:
    """(revision, down revision) from the head back to FIRST_CHECKED, newest first."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    (head,) = script.get_heads()
    out = []
    for rev in script.iterate_revisions(head, "base"):
        out.append((rev.revision, rev.down_revision))
        if rev.revision == FIRST_CHECKED:
            break
    return out


def test_latest_revision_downgrades_and_upgrades_again(empty_urls):
    url = empty_urls("latest")
    cfg = alembic_config(url)
    command.upgrade(cfg, "heads")
    at_head = schema(url)
    command.downgrade(cfg, "-1")
    command.upgrade(cfg, "heads")
    assert schema(url) == at_head


def test_each_new_revision_downgrades_to_exactly_the_previous_schema(empty_urls):
    url = empty_urls("walk")
    cfg = alembic_config(url)
    command.upgrade(cfg, "heads")
    at_head = schema(url)
    steps = checked_revisions()
    reference = empty_urls("reference")
    expected = {}
    for _revision, down in reversed(steps):  # the reference climbs from below, one revision at a time
        command.upgrade(alembic_config(reference), down)
        expected[down] = schema(reference)
    for revision, down in steps:
        command.downgrade(cfg, down)
        assert schema(url) == expected[down], f"downgrade of {revision} does not restore {down}'s schema"
    command.upgrade(cfg, "heads")
    assert schema(url) == at_head
