"""seed configuration data: the nine theme areas, Wuppertal's ten districts, default pages

Data only (schema in 0001). Rows are inserted only where their slug is missing, so re-running is safe;
a city renames, adds or deactivates them in the admin area.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.database import UTCDateTime, utcnow
from app.pages_defaults import PAGES
from proposals.defaults import DISTRICTS, THEMES

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

theme = sa.table(
    "theme",
    sa.column("slug", sa.String),
    sa.column("name_de", sa.String),
    sa.column("name_en", sa.String),
    sa.column("description_de", sa.Text),
    sa.column("description_en", sa.Text),
    sa.column("position", sa.Integer),
    sa.column("is_active", sa.Boolean),
)
district = sa.table(
    "district",
    sa.column("slug", sa.String),
    sa.column("name", sa.String),
    sa.column("position", sa.Integer),
    sa.column("is_active", sa.Boolean),
)
page = sa.table(
    "page",
    sa.column("slug", sa.String),
    sa.column("title_de", sa.String),
    sa.column("title_en", sa.String),
    sa.column("body_de", sa.Text),
    sa.column("body_en", sa.Text),
    sa.column("in_footer", sa.Boolean),
    sa.column("position", sa.Integer),
    sa.column("updated_at", UTCDateTime()),
)


def _missing(table, rows: list[dict]) -> list[dict]:
    have = set(op.get_bind().execute(sa.select(table.c.slug)).scalars())
    return [r for r in rows if r["slug"] not in have]


def upgrade() -> None:
    themes = [
        dict(
            slug=s, name_de=de, name_en=en, description_de=dd, description_en=de_, position=i, is_active=True
        )
        for i, (s, de, en, dd, de_) in enumerate(THEMES)
    ]
    districts = [dict(slug=s, name=n, position=i, is_active=True) for i, (s, n) in enumerate(DISTRICTS)]
    now = utcnow()
    pages = [
        dict(
            slug=s,
            title_de=td,
            title_en=te,
            body_de=bd,
            body_en=be,
            in_footer=True,
            position=i,
            updated_at=now,
        )
        for i, (s, td, te, bd, be) in enumerate(PAGES)
    ]
    for table, rows in ((theme, themes), (district, districts), (page, pages)):
        rows = _missing(table, rows)
        if rows:
            op.bulk_insert(table, rows)


def downgrade() -> None:
    op.execute(theme.delete().where(theme.c.slug.in_([t[0] for t in THEMES])))
    op.execute(district.delete().where(district.c.slug.in_([d[0] for d in DISTRICTS])))
    op.execute(page.delete().where(page.c.slug.in_([p[0] for p in PAGES])))
