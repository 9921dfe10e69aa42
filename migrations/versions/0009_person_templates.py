"""Person templates: each licence holder's photo templates fused into one, per engine.

The rows are made by the service, which holds the template keys: at start-up and by
`facematch index rebuild`, for every record enrolled before this migration.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

Id64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "person_templates",
        sa.Column("id", Id64, primary_key=True),
        sa.Column(
            "record_id",
            Id64,
            sa.ForeignKey("license_records.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("model_id", sa.String(64), nullable=False),
        sa.Column("descriptor", sa.LargeBinary(), nullable=False),
        sa.Column("photos", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("record_id", "model_id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_person_templates_record_id", "person_templates", ["record_id"])
    op.create_index("ix_person_templates_model_id", "person_templates", ["model_id"])


def downgrade() -> None:
    op.drop_index("ix_person_templates_model_id", "person_templates")
    op.drop_index("ix_person_templates_record_id", "person_templates")
    op.drop_table("person_templates")
