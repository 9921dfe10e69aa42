"""Accountability: activation codes, sealed second-factor seeds and token epochs on accounts;
changes that wait for a second administrator; operators assigned to a request; the court
order's document; the agency a request's information is for.

TOTP seeds were stored as they were; this migration cannot seal them (the key is not the
database's), so it drops them: accounts that had a second factor lose it and their password,
and sign in again only after an administrator's reset issues an activation code.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

Id64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    accounts = sa.table(
        "accounts",
        sa.column("kind", sa.String),
        sa.column("secret_hash", sa.String),
        sa.column("totp_active", sa.Boolean),
        sa.column("totp_secret", sa.String),
    )
    op.execute(
        accounts.update()
        .where(accounts.c.kind == "person")
        .values(secret_hash=None, totp_active=False, totp_secret=None)
    )
    with op.batch_alter_table("accounts") as batch:
        batch.alter_column("secret_hash", existing_type=sa.String(length=256), nullable=True)
        batch.drop_column("totp_secret")
        batch.add_column(sa.Column("totp_seed", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("activation_hash", sa.String(length=256), nullable=True))
        batch.add_column(
            sa.Column("activation_expires_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("token_epoch", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "account_changes",
        sa.Column("id", Id64, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("account_id", Id64, sa.ForeignKey("accounts.id"), nullable=True),
        sa.Column("username", sa.String(length=64), nullable=True),
        sa.Column("role", sa.String(length=32), nullable=True),
        sa.Column("course", sa.String(length=100), nullable=True),
        sa.Column("completed_on", sa.Date(), nullable=True),
        sa.Column("expires_on", sa.Date(), nullable=True),
        sa.Column("requested_by", Id64, sa.ForeignKey("accounts.id"), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by", Id64, sa.ForeignKey("accounts.id"), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_account_changes_status", "account_changes", ["status"])
    op.create_table(
        "assigned_operators",
        sa.Column("request_id", Id64, sa.ForeignKey("requests.id"), nullable=False),
        sa.Column("operator_id", Id64, sa.ForeignKey("accounts.id"), nullable=False),
        sa.PrimaryKeyConstraint("request_id", "operator_id"),
    )
    op.create_table(
        "court_order_documents",
        sa.Column("request_id", Id64, sa.ForeignKey("requests.id"), nullable=False),
        sa.Column("media_type", sa.String(length=32), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("uploaded_by", Id64, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("request_id"),
    )
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("information_for_name", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("information_for_code", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("information_for_code")
        batch.drop_column("information_for_name")
    op.drop_table("court_order_documents")
    op.drop_table("assigned_operators")
    op.drop_index("ix_account_changes_status", "account_changes")
    op.drop_table("account_changes")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("token_epoch")
        batch.drop_column("activation_expires_at")
        batch.drop_column("activation_hash")
        batch.drop_column("totp_seed")
        batch.add_column(sa.Column("totp_secret", sa.String(length=64), nullable=True))
    # Accounts without a password stay without one: nobody may sign in as them.
