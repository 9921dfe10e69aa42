"""Licence records, photos, templates and the gallery revision counter.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "license_records",
        sa.Column("id", Id64, primary_key=True),
        sa.Column("license_number", sa.String(32), nullable=False, unique=True),
        sa.Column("first_name", sa.String(100), nullable=False),
        sa.Column("middle_name", sa.String(100), nullable=True),
        sa.Column("last_name", sa.String(100), nullable=False),
        sa.Column("date_of_birth", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "photos",
        sa.Column("id", Id64, primary_key=True),
        sa.Column(
            "record_id",
            Id64,
            sa.ForeignKey("license_records.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("source_ref", sa.String(1024), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("record_id", "sha256"),
    )
    op.create_table(
        "templates",
        sa.Column("id", Id64, primary_key=True),
        sa.Column("photo_id", Id64, sa.ForeignKey("photos.id", ondelete="CASCADE"), nullable=False),
        sa.Column("model_id", sa.String(64), nullable=False, index=True),
        sa.Column("descriptor", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("photo_id", "model_id"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "gallery_revisions",
        sa.Column("model_id", sa.String(64), primary_key=True),
        sa.Column("revision", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("gallery_revisions")
    op.drop_table("templates")
    op.drop_table("photos")
    op.drop_table("license_records")
