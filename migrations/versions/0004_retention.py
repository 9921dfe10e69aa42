"""Retention: signed audit checkpoints, probe hashes that can be purged, and the time a
search's candidate list was purged.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

Id64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_checkpoints",
        sa.Column("seq", Id64, autoincrement=False, nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    with op.batch_alter_table("searches") as batch:
        batch.alter_column("probe_sha256", existing_type=sa.String(length=64), nullable=True)
        batch.add_column(
            sa.Column("candidates_purged_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("searches") as batch:
        batch.drop_column("candidates_purged_at")
        batch.alter_column("probe_sha256", existing_type=sa.String(length=64), nullable=False)
    op.drop_table("audit_checkpoints")
