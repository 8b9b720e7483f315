"""When the history database fails under a running server: a clear 503 or 507, never a 500.

Captioning never touches the database, so it goes on. History requests answer ``503 history_unavailable``
while the database cannot be reached, and work again by themselves once it is back (PostgreSQL
connections are checked before use, so stale ones are replaced). A full disk answers ``507 storage_full``;
the transaction is rolled back, so no partial entry is left.
"""

from __future__ import annotations

import logging

from flask import request
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from captioner.web.errors import ApiError, json_error, page_error, wants_json

log = logging.getLogger(__name__)
SQLITE_FULL = 13  # sqlite3's error code for "database or disk is full"
POSTGRES_DISK_FULL = "53100"  # SQLSTATE disk_full


def disk_full(error: Exception) -> bool:
    original = getattr(error, "orig", None)
    return (getattr(original, "sqlite_errorcode", None) == SQLITE_FULL
            or getattr(original, "sqlstate", None) == POSTGRES_DISK_FULL)


def database_failed(error: Exception):
    original = getattr(error, "orig", None) or error
    first_line = (str(original).strip().splitlines() or [type(original).__name__])[0]  # never the SQL or its values
    if disk_full(error):
        log.error("history database: the disk is full (%s) on %s %s", first_line, request.method, request.path)
        problem = ApiError("storage_full", "the server's disk is full, so nothing was saved; captioning still "
                                           "works; the server's admin needs to free some space", 507)
        title = "The server's disk is full"
    else:
        log.warning("history database unavailable (%s) on %s %s", first_line, request.method, request.path)
        problem = ApiError("history_unavailable", "the history database cannot be reached right now; captioning "
                                                  "still works, and the history comes back by itself when the "
                                                  "database does; try again in a moment", 503)
        title = "The history is unavailable"
    if wants_json():
        return json_error(problem)
    return page_error(problem.status, title, problem.message[0].upper() + problem.message[1:] + ".")


def register(app) -> None:
    for error_type in (OperationalError, InterfaceError, PoolTimeout):
        app.register_error_handler(error_type, database_failed)
