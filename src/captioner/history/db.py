"""Where the history lives: an engine and sessions from ``DATABASE_URL``, and the schema migrations.

``DATABASE_URL`` picks the database (``postgresql+psycopg://user:pass@host/db`` for PostgreSQL);
without it the history is a SQLite file, ``captioner.db`` in the web app's instance folder. The
schema is created and kept current by the Alembic migrations packaged in ``history/migrations``,
run by :func:`upgrade_database` when the web app starts.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from captioner.errors import CaptionerError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
DEFAULT_FILE_NAME = "captioner.db"


class DatabaseError(CaptionerError):
    """The history database could not be opened or brought up to date."""


def default_database_url(instance_path: str | Path) -> str:
    """The SQLite file ``captioner.db`` inside the instance folder."""
    return f"sqlite:///{Path(instance_path).resolve() / DEFAULT_FILE_NAME}"


def normalize_database_url(url: str) -> str:
    """Accept the usual spellings of a PostgreSQL URL and use psycopg 3 for them."""
    url = url.strip()
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def create_database_engine(url: str) -> Engine:
    """An engine for ``url``; for SQLite files the folder is created and foreign keys are enforced."""
    url = normalize_database_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise DatabaseError(f"DATABASE_URL is not a database URL ({error}); "
                            "use e.g. sqlite:///path/captioner.db or postgresql+psycopg://user:pass@host/db") from None
    kwargs: dict = {}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(parsed, **kwargs)
    except (ArgumentError, ImportError) as error:
        raise DatabaseError(f"cannot use DATABASE_URL {parsed.render_as_string(hide_password=True)}: {error}") from None
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not wait for a writer
    cursor.close()


def create_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


class MigrationStepsOnly(logging.Filter):
    """Alembic's INFO lines about itself (each plugin it sets up, the dialect's DDL mode) come at every
    server start and say nothing to the reader of its log; its lines about a migration that runs do."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or record.getMessage().startswith("Running ")


ALEMBIC_LOGGERS = ("alembic.runtime.plugins", "alembic.runtime.migration")


def quiet_alembic() -> None:
    """Keep only the migration steps (and any warning) of Alembic's log; safe to call again."""
    for name in ALEMBIC_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, MigrationStepsOnly) for f in logger.filters):
            logger.addFilter(MigrationStepsOnly())


def alembic_config(engine: Engine):
    """The Alembic configuration of the packaged migrations, bound to ``engine`` (no alembic.ini needed)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


@contextmanager
def _sqlite_migration_lock(engine: Engine):
    """One process at a time migrates a SQLite file (server workers start together); PostgreSQL takes
    an advisory lock in the migration environment instead."""
    database = engine.url.database if engine.url.get_backend_name() == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    try:
        import fcntl
    except ImportError:  # Windows: one worker there anyway
        yield
        return
    with open(f"{database}.migrate.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def upgrade_database(engine: Engine, revision: str = "head") -> None:
    """Create or update the history tables to ``revision`` (run at app start; quick when current)."""
    quiet_alembic()  # before Alembic's first import, which sets up its plugins
    from alembic import command

    try:
        with _sqlite_migration_lock(engine):
            command.upgrade(alembic_config(engine), revision)
    except SQLAlchemyError as error:
        where = engine.url.render_as_string(hide_password=True)
        raise DatabaseError(f"cannot prepare the history database at {where}: {error.__class__.__name__}: "
                            f"{str(error).splitlines()[0]}; check DATABASE_URL and that the server is running") from None


def downgrade_database(engine: Engine, revision: str = "base") -> None:
    """Undo migrations down to ``revision`` (``base`` drops the history tables)."""
    quiet_alembic()
    from alembic import command

    command.downgrade(alembic_config(engine), revision)


def table_names(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())
