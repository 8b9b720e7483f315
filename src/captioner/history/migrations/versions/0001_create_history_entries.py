"""Create the history_entries table.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "history_entries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("caption", sa.Text(), nullable=False),
        sa.Column("alternatives", sa.JSON(), nullable=False),
        sa.Column("decoding", sa.JSON(), nullable=False),
        sa.Column("translations", sa.JSON(), nullable=False),
        sa.Column("thumbnail", sa.LargeBinary(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.String(255), nullable=True),
    )
    op.create_index("ix_history_entries_created_at", "history_entries", ["created_at"])
    op.create_index("ix_history_entries_model", "history_entries", ["model"])


def downgrade() -> None:
    op.drop_index("ix_history_entries_model", table_name="history_entries")
    op.drop_index("ix_history_entries_created_at", table_name="history_entries")
    op.drop_table("history_entries")
