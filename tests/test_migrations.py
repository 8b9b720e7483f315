"""The packaged Alembic migrations: up to head, down to base, up again, on SQLite and PostgreSQL, and
the migrated schema matching the ORM models exactly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from datetime import datetime, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from support.history_databases import DATABASES, database_url_for, drop_history_tables
from PIL import Image
from sqlalchemy import text

from captioner.history import make_thumbnail
from captioner.history.db import (create_database_engine, create_session_factory, downgrade_database, table_names,
                                  upgrade_database)
from captioner.history.jobs import JobStore
from captioner.history.keys import KeyStore
from captioner.history.models import Base
from captioner.history.store import HistoryStore

HEAD = "0005"


@pytest.fixture(params=DATABASES)
def engine(request, tmp_path):
    url = database_url_for(request.param, tmp_path)
    engine = create_database_engine(url)
    yield engine
    engine.dispose()
    if request.param == "postgres":
        drop_history_tables(url)


def current_revision(engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def test_upgrade_downgrade_upgrade(engine):
    assert "history_entries" not in table_names(engine)
    upgrade_database(engine)
    assert {"history_entries", "alembic_version"} <= table_names(engine)
    assert current_revision(engine) == HEAD
    downgrade_database(engine, "base")
    assert "history_entries" not in table_names(engine)
    assert current_revision(engine) is None
    upgrade_database(engine)
    assert "history_entries" in table_names(engine)
    assert current_revision(engine) == HEAD


def test_upgrading_again_keeps_the_data(engine):
    upgrade_database(engine)
    store = HistoryStore(create_session_factory(engine))
    store.add(model="m", caption="a red circle", thumbnail=make_thumbnail(Image.new("RGB", (8, 8))), width=8, height=8)
    upgrade_database(engine)  # what every app start does
    assert [e.caption for e in store.list().entries] == ["a red circle"]


def test_keys_migration_keeps_earlier_entries_as_the_shared_history(engine):
    upgrade_database(engine, "0001")
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO history_entries (created_at, model, caption, alternatives, decoding, translations, "
            "thumbnail, width, height) VALUES (:at, 'm', 'an old caption', '[]', '{}', '{}', :thumb, 8, 8)"),
            {"at": datetime(2024, 5, 1, tzinfo=timezone.utc), "thumb": make_thumbnail(Image.new("RGB", (8, 8)))})
    upgrade_database(engine)
    assert {"api_keys", "history_entries"} <= table_names(engine)
    store = HistoryStore(create_session_factory(engine))
    [entry] = store.list().entries
    assert entry.caption == "an old caption" and entry.owner_key_id is None
    keys = KeyStore(create_session_factory(engine))
    info, _key = keys.create("alice")
    store.add(model="m", caption="alice's", thumbnail=make_thumbnail(Image.new("RGB", (8, 8))), width=8, height=8,
              owner_key_id=info.id)
    assert [e.caption for e in store.list(visible_to=info.id).entries] == ["alice's"]
    downgrade_database(engine, "0001")
    assert "api_keys" not in table_names(engine)
    assert current_revision(engine) == "0001"
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM history_entries")).scalar() == 2


def test_job_owners_migration_keeps_jobs_and_their_items(engine):
    upgrade_database(engine, "0003")
    jobs = JobStore(create_session_factory(engine))
    with engine.begin() as connection:  # a job of the 0003 schema, with one item
        connection.execute(text("INSERT INTO caption_jobs (id, created_at, status, model, decoding, total, owner) "
                                "VALUES ('old', :at, 'done', 'm', '{}', 1, 'host:1')"), {"at": datetime.now(timezone.utc)})
        connection.execute(text("INSERT INTO caption_job_items (job_id, position, caption, alternatives, edited) "
                                "VALUES ('old', 0, 'a red circle', '[]', false)"))
    upgrade_database(engine)
    assert jobs.get("old")["items"][0]["caption"] == "a red circle"  # no owner: the shared jobs, seen by admins
    info, _key = KeyStore(create_session_factory(engine)).create("alice")
    assert jobs.get("old", visible_to=info.id) is None
    alices = jobs.create("m", {}, [{"file_name": "a.png"}], owner_key_id=info.id)
    assert jobs.get(alices, visible_to=info.id)["id"] == alices and jobs.get(alices)["id"] == alices
    downgrade_database(engine, "0003")
    assert current_revision(engine) == "0003"
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM caption_job_items")).scalar() == 2


def test_migrated_schema_matches_the_models(engine):
    upgrade_database(engine)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


@pytest.mark.parametrize("kind", DATABASES)
def test_server_workers_starting_together_migrate_one_at_a_time(kind, tmp_path):
    url = database_url_for(kind, tmp_path)
    code = ("import sys; from captioner.history.db import create_database_engine, upgrade_database; "
            "upgrade_database(create_database_engine(sys.argv[1]))")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    workers = [subprocess.Popen([sys.executable, "-c", code, url], env=env, stderr=subprocess.PIPE, text=True)
               for _ in range(4)]
    errors = [worker.communicate(timeout=120)[1] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0, 0, 0], errors
    engine = create_database_engine(url)
    assert current_revision(engine) == HEAD
    engine.dispose()
    if kind == "postgres":
        drop_history_tables(url)


def test_alembic_says_only_what_a_migration_does(tmp_path):
    """A server's log (INFO) gets one line per migration step that runs, and nothing from Alembic when none
    runs; in a fresh process, as at a server's start, where Alembic is imported for the first time."""
    script = ("import logging, sys; logging.basicConfig(level=logging.INFO, stream=sys.stdout, format='%(name)s: %(message)s')\n"
              "from captioner.history.db import create_database_engine, upgrade_database\n"
              f"engine = create_database_engine('sqlite:///{tmp_path / 'quiet.db'}')\n"
              "upgrade_database(engine); print('-- again'); upgrade_database(engine)\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")})
    assert run.returncode == 0, run.stderr
    first, again = run.stdout.split("-- again\n")
    lines = [line for line in first.splitlines() if line.startswith("alembic")]
    assert lines and all(": Running upgrade" in line for line in lines), first
    assert lines[-1].endswith(f"-> {HEAD}, " + lines[-1].split(f"-> {HEAD}, ")[-1]) and len(lines) == int(HEAD)
    assert [line for line in again.splitlines() if line.startswith("alembic")] == [], again
