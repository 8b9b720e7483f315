"""The key that owns each caption job, as for history entries.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

A plain column and index, without a foreign key: on SQLite a foreign key means rebuilding caption_jobs,
and with foreign keys enforced that rebuild would delete every job's items (ON DELETE CASCADE). Keys are
only ever revoked, never deleted, so the key a job names always exists.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Jobs created before keys owned jobs keep no owner: admin keys, and servers without keys, see them.
    op.add_column("caption_jobs", sa.Column("owner_key_id", sa.Integer(), nullable=True))
    op.create_index("ix_caption_jobs_owner_key_id", "caption_jobs", ["owner_key_id"])


def downgrade() -> None:
    op.drop_index("ix_caption_jobs_owner_key_id", table_name="caption_jobs")
    op.drop_column("caption_jobs", "owner_key_id")  # SQLite 3.35+ drops a plain column in place
