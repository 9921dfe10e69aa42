"""Accounts, training, requests, reviews, searches, disclosures and the audit log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

Id64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
GENESIS_HASH = "0" * 64

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", Id64, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("secret_hash", sa.String(length=256), nullable=False),
        sa.Column("totp_secret", sa.String(length=64), nullable=True),
        sa.Column("totp_active", sa.Boolean(), nullable=False),
        sa.Column("totp_last_step", sa.BigInteger(), nullable=True),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username"),
    )
    audit_head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(audit_head, [{"id": 1, "seq": 0, "hash": GENESIS_HASH}])
    op.create_table(
        "audit_log",
        sa.Column("seq", Id64, autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("component", sa.String(length=32), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("object_id", sa.String(length=100), nullable=True),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_table(
        "requests",
        sa.Column("id", Id64, nullable=False),
        sa.Column("submitted_by", Id64, nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("agency_name", sa.String(length=200), nullable=False),
        sa.Column("agency_code", sa.String(length=32), nullable=False),
        sa.Column("agency_kind", sa.String(length=16), nullable=False),
        sa.Column("immigration_authority", sa.Boolean(), nullable=False),
        sa.Column("case_number", sa.String(length=100), nullable=False),
        sa.Column("requesting_officer", sa.String(length=200), nullable=False),
        sa.Column("crime_category", sa.String(length=64), nullable=False),
        sa.Column("statutes", sa.JSON(), nullable=False),
        sa.Column("legal_process", sa.String(length=16), nullable=False),
        sa.Column("court", sa.String(length=200), nullable=True),
        sa.Column("judge", sa.String(length=200), nullable=True),
        sa.Column("order_signed_on", sa.Date(), nullable=True),
        sa.Column("order_sha256", sa.String(length=64), nullable=True),
        sa.Column("narrative", sa.Text(), nullable=False),
        sa.Column("immigration_related", sa.Boolean(), nullable=False),
        sa.Column("screening_outcome", sa.String(length=16), nullable=False),
        sa.Column("screening_rule", sa.String(length=8), nullable=False),
        sa.Column("screening_reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("searches_allowed", sa.Integer(), nullable=False),
        sa.Column("searches_used", sa.Integer(), nullable=False),
        sa.Column("authorised_until", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["submitted_by"],
            ["accounts.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_requests_status"), ["status"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_requests_submitted_at"), ["submitted_at"], unique=False
        )

    op.create_table(
        "training_records",
        sa.Column("id", Id64, nullable=False),
        sa.Column("account_id", Id64, nullable=False),
        sa.Column("course", sa.String(length=100), nullable=False),
        sa.Column("completed_on", sa.Date(), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("training_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_training_records_account_id"), ["account_id"], unique=False
        )

    op.create_table(
        "reviews",
        sa.Column("id", Id64, nullable=False),
        sa.Column("request_id", Id64, nullable=False),
        sa.Column("level", sa.String(length=32), nullable=False),
        sa.Column("reviewer_id", Id64, nullable=False),
        sa.Column("via_system_id", Id64, nullable=True),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["requests.id"],
        ),
        sa.ForeignKeyConstraint(
            ["reviewer_id"],
            ["accounts.id"],
        ),
        sa.ForeignKeyConstraint(
            ["via_system_id"],
            ["accounts.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id", "level"),
        sa.UniqueConstraint("request_id", "reviewer_id"),
    )
    op.create_table(
        "searches",
        sa.Column("id", Id64, nullable=False),
        sa.Column("request_id", Id64, nullable=False),
        sa.Column("operator_id", Id64, nullable=False),
        sa.Column("via_system_id", Id64, nullable=True),
        sa.Column("probe_sha256", sa.String(length=64), nullable=False),
        sa.Column("model_id", sa.String(length=64), nullable=False),
        sa.Column("index_revision", sa.BigInteger(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("searched_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=True),
        sa.Column("confirmed_rank", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["operator_id"],
            ["accounts.id"],
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["requests.id"],
        ),
        sa.ForeignKeyConstraint(
            ["via_system_id"],
            ["accounts.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("searches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_searches_request_id"), ["request_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_searches_searched_at"), ["searched_at"], unique=False)

    op.create_table(
        "disclosures",
        sa.Column("id", Id64, nullable=False),
        sa.Column("search_id", Id64, nullable=False),
        sa.Column("request_id", Id64, nullable=False),
        sa.Column("record_id", Id64, nullable=True),
        sa.Column("license_number", sa.String(length=32), nullable=False),
        sa.Column("agency_name", sa.String(length=200), nullable=False),
        sa.Column("released_by", Id64, nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["record_id"], ["license_records.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(
            ["released_by"],
            ["accounts.id"],
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["requests.id"],
        ),
        sa.ForeignKeyConstraint(
            ["search_id"],
            ["searches.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("search_id"),
    )
    with op.batch_alter_table("disclosures", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_disclosures_license_number"), ["license_number"], unique=False
        )

    op.create_table(
        "search_candidates",
        sa.Column("search_id", Id64, nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("record_id", Id64, nullable=True),
        sa.Column("distance", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["record_id"], ["license_records.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(
            ["search_id"],
            ["searches.id"],
        ),
        sa.PrimaryKeyConstraint("search_id", "rank"),
    )


def downgrade() -> None:
    op.drop_table("search_candidates")
    with op.batch_alter_table("disclosures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_disclosures_license_number"))

    op.drop_table("disclosures")
    with op.batch_alter_table("searches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_searches_searched_at"))
        batch_op.drop_index(batch_op.f("ix_searches_request_id"))

    op.drop_table("searches")
    op.drop_table("reviews")
    with op.batch_alter_table("training_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_training_records_account_id"))

    op.drop_table("training_records")
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_requests_submitted_at"))
        batch_op.drop_index(batch_op.f("ix_requests_status"))

    op.drop_table("requests")
    op.drop_table("audit_log")
    op.drop_table("audit_head")
    op.drop_table("accounts")
