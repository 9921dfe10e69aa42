"""Meaningful human review: candidates known by an opaque reference and the photo that
matched; each examiner's conclusion on every candidate; the number of examiners a release
needs and the verifying one; the probe kept, sealed, until the search is decided; and when a
release was shown to the operator. And the audit log's outcome made wide enough for every
refusal code (`refused:operators_not_assigned_here` did not fit in 32).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

Id64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("searches") as batch:
        batch.add_column(
            sa.Column("examiners_required", sa.Integer(), nullable=False, server_default="1")
        )
        batch.add_column(sa.Column("verifier_id", Id64, nullable=True))
        batch.add_column(
            sa.Column("examinations_recorded", sa.Integer(), nullable=False, server_default="0")
        )
        batch.create_foreign_key("fk_searches_verifier", "accounts", ["verifier_id"], ["id"])
    with op.batch_alter_table("search_candidates") as batch:
        batch.add_column(sa.Column("ref", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("photo_id", Id64, nullable=True))
        batch.create_foreign_key(
            "fk_search_candidates_photo", "photos", ["photo_id"], ["id"], ondelete="SET NULL"
        )
    # Candidates of searches made before: a reference each, so none is left unnamed.
    candidates = sa.table(
        "search_candidates",
        sa.column("search_id", sa.BigInteger),
        sa.column("rank", sa.Integer),
        sa.column("ref", sa.String),
    )
    connection = op.get_bind()
    for search_id, rank in connection.execute(
        sa.select(candidates.c.search_id, candidates.c.rank)
    ).all():
        connection.execute(
            candidates.update()
            .where(candidates.c.search_id == search_id, candidates.c.rank == rank)
            .values(ref=secrets.token_urlsafe(12))
        )
    with op.batch_alter_table("search_candidates") as batch:
        batch.alter_column("ref", existing_type=sa.String(length=32), nullable=False)
    with op.batch_alter_table("searches") as batch:
        batch.alter_column("examiners_required", server_default=None)
        batch.alter_column("examinations_recorded", server_default=None)
    op.create_table(
        "examinations",
        sa.Column("search_id", Id64, sa.ForeignKey("searches.id"), primary_key=True),
        sa.Column("examiner_id", Id64, sa.ForeignKey("accounts.id"), primary_key=True),
        sa.Column("concluded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_examinations_concluded_at", "examinations", ["concluded_at"])
    op.create_table(
        "candidate_conclusions",
        sa.Column("search_id", Id64, primary_key=True),
        sa.Column("examiner_id", Id64, primary_key=True),
        sa.Column("rank", sa.Integer(), primary_key=True),
        sa.Column("conclusion", sa.String(length=16), nullable=False),
        sa.Column("basis", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(
            ["search_id", "examiner_id"],
            ["examinations.search_id", "examinations.examiner_id"],
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "kept_probes",
        sa.Column("search_id", Id64, sa.ForeignKey("searches.id"), primary_key=True),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("face_box", sa.String(length=64), nullable=False),
    )
    with op.batch_alter_table("disclosures") as batch:
        batch.add_column(sa.Column("shown_at", sa.DateTime(timezone=True), nullable=True))
    # Every release made before was shown to its operator when it was made.
    disclosures = sa.table(
        "disclosures", sa.column("shown_at", sa.DateTime), sa.column("released_at", sa.DateTime)
    )
    op.execute(disclosures.update().values(shown_at=disclosures.c.released_at))
    with op.batch_alter_table("audit_log") as batch:
        batch.alter_column(
            "outcome", existing_type=sa.String(length=32), type_=sa.String(length=64)
        )


def downgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.alter_column(
            "outcome", existing_type=sa.String(length=64), type_=sa.String(length=32)
        )
    with op.batch_alter_table("disclosures") as batch:
        batch.drop_column("shown_at")
    op.drop_table("kept_probes")
    op.drop_table("candidate_conclusions")
    op.drop_index("ix_examinations_concluded_at", "examinations")
    op.drop_table("examinations")
    with op.batch_alter_table("search_candidates") as batch:
        batch.drop_constraint("fk_search_candidates_photo", type_="foreignkey")
        batch.drop_column("photo_id")
        batch.drop_column("ref")
    with op.batch_alter_table("searches") as batch:
        batch.drop_constraint("fk_searches_verifier", type_="foreignkey")
        batch.drop_column("examinations_recorded")
        batch.drop_column("verifier_id")
        batch.drop_column("examiners_required")
