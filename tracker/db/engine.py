"""Opening the database and bringing its schema to the newest migration."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from shared.service.disk_space import DiskFull, is_disk_full
from tracker.errors import DatabaseUnavailable, TrackerError

T = TypeVar("T")
log = logging.getLogger("mist.tracker")
MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def database_url(data: Path, configured: str = "") -> str:
    """The database: as configured (MIST_DATABASE_URL, read by tracker/settings.py), else SQLite in the data directory."""
    return configured or f"sqlite:///{data / 'tracker.db'}"


def open_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


class NoDatabase(TrackerError):
    """An admin command found no tracker database where it looked."""

    status = 503


def open_existing(data: Path, configured_url: str = "") -> "Database":
    """The tracker's database for an admin command: it must exist already (an admin command never creates one)."""
    url = database_url(data, configured_url)
    engine = open_engine(url)
    shown = engine.url.render_as_string(hide_password=True)
    where = "check --data and MIST_DATABASE_URL: they must be the tracker's"
    if engine.url.get_backend_name() == "sqlite" and not Path(engine.url.database or "").is_file():
        raise NoDatabase(f"there is no tracker database at {shown}; {where}")
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table("builds"):
                raise NoDatabase(f"{shown} holds no Mist tables; {where}")
    except SQLAlchemyError as exc:
        raise NoDatabase(f"cannot open the tracker's database {shown} ({exc.__class__.__name__}); {where}") from exc
    return Database(engine)


def migrate(engine: Engine) -> None:
    """Run every migration not yet applied (the first one creates everything)."""
    from alembic import command  # here, not at the top: the worker and mist-admin open the database without it
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # SQLite alters a table by copying it, dropping the old one and renaming the copy: with foreign
            # keys on, the drop cascades into every row that refers to it (a 0001 database lost all its
            # builds in 0002). Off for the migration, as SQLite's documentation prescribes; the pragma
            # works only outside a transaction.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def lost_connection(exc: DBAPIError) -> bool:
    """The database went away (not a bad statement): the connection dropped under a statement, or a new one
    could not be made (no statement then)."""
    return exc.connection_invalidated or (exc.statement is None and isinstance(exc, OperationalError))


class Database:
    """The tracker's handle on its database; blocking calls run in a worker thread."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)

    def __repr__(self) -> str:
        return f"Database(url={self.engine.url!r})"

    def call(self, fn: Callable[[Session], T]) -> T:
        """`fn` in one transaction; a lost database becomes DatabaseUnavailable here, so no layer above sees
        SQLAlchemy's errors (a bad statement stays what it is: a bug, answered 500)."""
        try:
            with self.sessions.begin() as session:
                return fn(session)
        except DBAPIError as exc:
            if is_disk_full(exc):  # SQLite's "database or disk is full", PostgreSQL's 53100: not an outage
                log.error("the disk is full under the database: %s", exc.orig or exc)
                raise DiskFull() from exc
            if lost_connection(exc):  # a restart or a network cut: the transaction rolled back
                log.error("database unavailable: %s", exc.orig or exc)
                raise DatabaseUnavailable() from exc
            raise

    async def run(self, fn: Callable[[Session], T]) -> T:
        return await asyncio.to_thread(self.call, fn)

    def ping(self) -> None:
        """Read the schema's version: a database that is gone, empty or unreachable raises DatabaseUnavailable."""
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT version_num FROM alembic_version")).all()
        except SQLAlchemyError as exc:
            raise DatabaseUnavailable(
                f"the database does not answer ({exc.__class__.__name__}: {exc.args[0] if exc.args else exc})"
            ) from exc
