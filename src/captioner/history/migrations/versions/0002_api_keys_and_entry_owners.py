"""API keys, and the key that owns each history entry.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_api_keys_key_hash", "api_keys", ["key_hash"], unique=True)
    # Entries saved before keys existed keep no owner: the local, shared history.
    with op.batch_alter_table("history_entries") as batch:
        batch.add_column(sa.Column("owner_key_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_history_entries_owner_key_id", "api_keys", ["owner_key_id"], ["id"])
        batch.create_index("ix_history_entries_owner_key_id", ["owner_key_id"])


def downgrade() -> None:
    with op.batch_alter_table("history_entries") as batch:
        batch.drop_index("ix_history_entries_owner_key_id")
        batch.drop_constraint("fk_history_entries_owner_key_id", type_="foreignkey")
        batch.drop_column("owner_key_id")
    op.drop_index("ix_api_keys_key_hash", table_name="api_keys")
    op.drop_table("api_keys")
