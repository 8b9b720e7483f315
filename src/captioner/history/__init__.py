"""The caption history: saved captions with small thumbnails, in SQLite or PostgreSQL.

``open_history(url)`` connects, brings the schema up to date (Alembic) and returns a
:class:`HistoryStore`; the web app does this once at start.
"""

from __future__ import annotations

from captioner.history.db import (DatabaseError, create_database_engine, create_session_factory,
                                  default_database_url, upgrade_database)
from captioner.history.store import HistoryPage, HistoryStore, export_csv, export_json
from captioner.history.thumbnails import make_thumbnail


def open_history(url: str, migrate: bool = True) -> HistoryStore:
    """A store over the database at ``url``, its tables created or updated first when ``migrate``."""
    engine = create_database_engine(url)
    if migrate:
        upgrade_database(engine)
    return HistoryStore(create_session_factory(engine), engine=engine)


__all__ = ["DatabaseError", "HistoryPage", "HistoryStore", "default_database_url", "export_csv", "export_json",
           "make_thumbnail", "open_history"]
