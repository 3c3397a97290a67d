"""voter links: an index on (process_id, voter_hash) for a voter's links across the ballots of a process

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26 04:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("voter_link", schema=None) as batch_op:
        batch_op.create_index("ix_voter_link_process_voter", ["process_id", "voter_hash"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("voter_link", schema=None) as batch_op:
        batch_op.drop_index("ix_voter_link_process_voter")
