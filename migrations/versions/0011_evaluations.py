"""Independent testers' evaluation jobs and the photos each was sent (kept, sealed, until the
job ends).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

Id64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "evaluation_jobs",
        sa.Column("id", Id64, primary_key=True),
        sa.Column("tester_id", Id64, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("submitted_at", When, nullable=False),
        sa.Column("started_at", When, nullable=True),
        sa.Column("finished_at", When, nullable=True),
        sa.Column("photo_set_sha256", sa.String(length=64), nullable=False),
        sa.Column("photos", sa.Integer(), nullable=False),
        sa.Column("people", sa.Integer(), nullable=False),
        sa.Column("labels", sa.Text(), nullable=False),
        sa.Column("encoded", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.String(length=64), nullable=True),
        sa.Column("operating_point_sha256", sa.String(length=64), nullable=True),
        sa.Column("results", sa.Text(), nullable=True),
        sa.Column("failure", sa.Text(), nullable=True),
    )
    for column in ("tester_id", "status", "submitted_at"):
        op.create_index(f"ix_evaluation_jobs_{column}", "evaluation_jobs", [column])
    op.create_table(
        "evaluation_photos",
        sa.Column("id", Id64, primary_key=True),
        sa.Column(
            "job_id",
            Id64,
            sa.ForeignKey("evaluation_jobs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("person", sa.String(length=64), nullable=True),
        sa.Column("labels", sa.Text(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=True),
    )
    op.create_index("ix_evaluation_photos_job_id", "evaluation_photos", ["job_id"])


def downgrade() -> None:
    op.drop_index("ix_evaluation_photos_job_id", "evaluation_photos")
    op.drop_table("evaluation_photos")
    for column in ("tester_id", "status", "submitted_at"):
        op.drop_index(f"ix_evaluation_jobs_{column}", "evaluation_jobs")
    op.drop_table("evaluation_jobs")
