"""used tokens: spent single-use tokens (export downloads, re-authentication links) in a table of their own

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26 04:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

import app.database  # noqa: F401

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "used_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("used_at", app.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", app.database.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_used_token")),
        sa.UniqueConstraint("purpose", "digest", name="uq_used_token_purpose_digest"),
    )
    op.create_index("ix_used_token_expires_at", "used_token", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_used_token_expires_at", table_name="used_token")
    op.drop_table("used_token")
