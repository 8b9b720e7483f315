"""The databases the history tests run against: a SQLite file always, PostgreSQL when
``TEST_POSTGRES_URL`` names a server (``.ci/run`` starts one and sets it). Tables in that database
are dropped before and after each test: point it at a database made for testing only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import text

from captioner.history.db import create_database_engine

POSTGRES_URL_VARIABLE = "TEST_POSTGRES_URL"
DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def drop_history_tables(url: str) -> None:
    engine = create_database_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS caption_job_items"))
        connection.execute(text("DROP TABLE IF EXISTS caption_jobs"))
        connection.execute(text("DROP TABLE IF EXISTS history_entries"))
        connection.execute(text("DROP TABLE IF EXISTS api_keys"))
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()


def postgres_url() -> str:
    """TEST_POSTGRES_URL, emptied of history tables; skips the test when it is not set."""
    url = os.environ.get(POSTGRES_URL_VARIABLE, "").strip()
    if not url:
        pytest.skip(f"no PostgreSQL server: set {POSTGRES_URL_VARIABLE}=postgresql+psycopg://USER:PASS@HOST/DB "
                    "(.ci/run starts Debian's PostgreSQL and sets it when it can)")
    try:
        drop_history_tables(url)
    except Exception as error:  # the server was named, so not reaching it is a failure, not a skip
        pytest.fail(f"{POSTGRES_URL_VARIABLE} is set but the server cannot be used: {error}")
    return url


def database_url_for(kind: str, tmp_path: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'instance' / 'captioner.db'}"
    return postgres_url()
