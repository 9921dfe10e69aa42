"""A running evaluation job's runner and lease: several service processes may run evaluations,
and a job whose runner died is taken up by another once its lease lapses.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("evaluation_jobs", sa.Column("runner", sa.String(length=32), nullable=True))
    op.add_column(
        "evaluation_jobs", sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("evaluation_jobs") as table:
        table.drop_column("lease_until")
        table.drop_column("runner")
