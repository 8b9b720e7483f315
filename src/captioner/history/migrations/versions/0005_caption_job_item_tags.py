"""A tagger's tags with their probabilities, and its rating, for each image of a caption job.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07

Two nullable JSON columns: items captioned before (and by models that are no taggers) have none.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("caption_job_items", sa.Column("tags", sa.JSON(), nullable=True))
    op.add_column("caption_job_items", sa.Column("rating", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("caption_job_items", "rating")  # SQLite 3.35+ drops a plain column in place
    op.drop_column("caption_job_items", "tags")
