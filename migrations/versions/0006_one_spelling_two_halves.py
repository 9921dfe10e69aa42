"""The unit administrator's role spelt as its level is, in accounts and in the changes that
wait for a second administrator; and the hash of the first half of a person's activation
code, kept on the change until the second administrator's approval adds the second half.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ROLE_TABLES = ("accounts", "account_changes")


def _rename_role(old: str, new: str) -> None:
    for table in _ROLE_TABLES:
        rows = sa.table(table, sa.column("role", sa.String))
        op.execute(rows.update().where(rows.c.role == old).values(role=new))


def upgrade() -> None:
    _rename_role("unit_admin", "unit_administrator")
    with op.batch_alter_table("account_changes") as batch:
        batch.add_column(sa.Column("first_half_hash", sa.String(length=256), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("account_changes") as batch:
        batch.drop_column("first_half_hash")
    _rename_role("unit_administrator", "unit_admin")
