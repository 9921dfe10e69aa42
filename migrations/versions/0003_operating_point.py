"""Searches record the ambiguity margin and the operating point their threshold came from.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Searches made before operating points existed used the engine's default threshold
    # with no margin and no operating point file: "" says so.
    with op.batch_alter_table("searches") as batch:
        batch.add_column(sa.Column("margin", sa.Float(), nullable=False, server_default="0"))
        batch.add_column(
            sa.Column(
                "operating_point_sha256", sa.String(length=64), nullable=False, server_default=""
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("searches") as batch:
        batch.drop_column("operating_point_sha256")
        batch.drop_column("margin")
