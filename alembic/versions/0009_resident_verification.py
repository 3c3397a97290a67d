"""resident verification: verified attributes, registers, letter codes

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 01:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

import app.database

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("resident_verified_at", app.database.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("resident_verification_method", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("verified_birth_date", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("verified_birth_year", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("verified_postal_code", sa.String(length=10), nullable=True))

    op.create_table(
        "resident_verification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("method", sa.String(length=40), nullable=False),
        sa.Column("verified_by", sa.Integer(), nullable=True),
        sa.Column("at", app.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reference_hash", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_resident_verification_user_id_user"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resident_verification")),
    )
    with op.batch_alter_table("resident_verification", schema=None) as batch_op:
        batch_op.create_index("ix_resident_verification_user_id", ["user_id"], unique=False)

    op.create_table(
        "resident_register",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("process_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("retention", sa.String(length=8), nullable=False),
        sa.Column("has_data", sa.Boolean(), nullable=False),
        sa.Column("code_seed", sa.LargeBinary(length=32), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", app.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("printing_data_deleted_at", app.database.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", app.database.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["user.id"],
            name=op.f("fk_resident_register_created_by_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["process_id"],
            ["process.id"],
            name=op.f("fk_resident_register_process_id_process"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resident_register")),
    )
    op.create_table(
        "register_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("register_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=True),
        sa.Column("reference_hash", sa.String(length=64), nullable=True),
        sa.Column("postal_code", sa.String(length=10), nullable=True),
        sa.Column("birth_year", sa.Integer(), nullable=True),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("used_by_user_id", sa.Integer(), nullable=True),
        sa.Column("used_at", app.database.UTCDateTime(timezone=True), nullable=True),
        sa.Column("verified_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["register_id"],
            ["resident_register.id"],
            name=op.f("fk_register_entry_register_id_resident_register"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["used_by_user_id"],
            ["user.id"],
            name=op.f("fk_register_entry_used_by_user_id_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_register_entry")),
        sa.UniqueConstraint("code_hash", name="uq_register_entry_code_hash"),
        sa.UniqueConstraint("register_id", "used_by_user_id", name="uq_register_entry_register_user"),
    )
    with op.batch_alter_table("register_entry", schema=None) as batch_op:
        batch_op.create_index("ix_register_entry_reference_hash", ["reference_hash"], unique=False)
        batch_op.create_index("ix_register_entry_register_id", ["register_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("register_entry", schema=None) as batch_op:
        batch_op.drop_index("ix_register_entry_register_id")
        batch_op.drop_index("ix_register_entry_reference_hash")
    op.drop_table("register_entry")
    op.drop_table("resident_register")
    with op.batch_alter_table("resident_verification", schema=None) as batch_op:
        batch_op.drop_index("ix_resident_verification_user_id")
    op.drop_table("resident_verification")
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.drop_column("verified_postal_code")
        batch_op.drop_column("verified_birth_year")
        batch_op.drop_column("verified_birth_date")
        batch_op.drop_column("resident_verification_method")
        batch_op.drop_column("resident_verified_at")
