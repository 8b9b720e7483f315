"""Alembic environment of the history tables. The engine comes from ``config.attributes["engine"]``
(set by :func:`captioner.history.db.alembic_config`); no alembic.ini is involved."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from captioner.history.models import Base

config = context.config
target_metadata = Base.metadata
MIGRATION_LOCK_KEY = 0x63617074  # PostgreSQL advisory lock held while migrating ("capt")


def run_migrations_offline() -> None:
    """Print the SQL instead of running it (``alembic upgrade --sql``)."""
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        from captioner.history.db import create_database_engine

        engine = create_database_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":  # workers starting together migrate one at a time
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
