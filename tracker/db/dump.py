"""A logical dump of the tracker's database, and loading one into an empty database.

Every table's rows as JSON lines, read in one snapshot (a repeatable-read
transaction on PostgreSQL, one read transaction on SQLite in WAL mode), with
the schema revision on the first line. Loading builds the schema of that
revision with the migrations, inserts the rows and migrates to the newest
revision, so a dump of SQLite loads into PostgreSQL and the other way round,
and a dump from an older Mist loads into a newer one.

    {"format": "mist-database-dump", "version": 1, "revision": "0005", "dialect": "sqlite"}
    {"table": "users", "columns": ["id", "name", ...], "kinds": ["value", "value", ...]}
    [1, "admin", ...]
    ...
    {"end": true, "rows": {"users": 3, ...}}

Values are JSON, except bytes (base64) and datetimes (ISO 8601), which the
kinds name.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, Integer, MetaData, func, inspect, make_url, select, text
from sqlalchemy.exc import SQLAlchemyError

from tracker.db.engine import MIGRATIONS, open_engine
from tracker.errors import TrackerError

FORMAT = "mist-database-dump"
VERSION = 1
INSERT_BATCH = 500
ALEMBIC_TABLE = "alembic_version"


class DumpError(TrackerError):
    """The database could not be dumped or loaded; the message says why and what to do."""


class DatabaseNotEmpty(DumpError):
    """Loading would overwrite a database that already holds tables."""


@dataclass(frozen=True)
class DumpSummary:
    revision: str
    dialect: str
    rows: dict[str, int]  # per table, in the order written


def shown(url: str) -> str:
    """A database URL fit for a message: without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (SQLAlchemyError, ValueError):
        return url.split("@")[-1]


# Dumping


def _kind(column_type: Any) -> str:
    try:
        python = column_type.python_type
    except NotImplementedError:
        return "value"
    if issubclass(python, (bytes, bytearray, memoryview)):
        return "bytes"
    if issubclass(python, datetime):
        return "datetime"
    return "value"


def _encode(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "bytes":
        return base64.b64encode(bytes(value)).decode("ascii")
    if kind == "datetime":
        return value.isoformat()
    return value


def _line(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode("utf-8") + b"\n"


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """One connection whose reads all see the database as it was at their first read."""
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            # pysqlite starts no transaction for reads; one explicit read transaction is one WAL snapshot.
            connection.exec_driver_sql("BEGIN")
        else:
            connection.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        try:
            yield connection
        finally:
            connection.rollback()


def dump(url: str, out: IO[bytes], observe: Callable[[str, Mapping[str, Any]], None]) -> DumpSummary:
    """Write every table's rows to `out` from one snapshot; `observe` sees each row (the backup collects what
    objects the rows name)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and not Path(parsed.database).is_file():
        raise DumpError(
            f"there is no database at {parsed.database}; if the server uses PostgreSQL, set "
            "MIST_DATABASE_URL as for the server, else pass --data the server's data directory"
        )
    engine = open_engine(url)
    try:
        with _snapshot(engine) as connection:
            try:
                revision = connection.execute(text(f"SELECT version_num FROM {ALEMBIC_TABLE}")).scalar_one()
            except SQLAlchemyError as exc:
                raise DumpError(
                    f"the database at {shown(url)} has no Mist schema (no {ALEMBIC_TABLE} row); "
                    "check --data and MIST_DATABASE_URL point at the server's database"
                ) from exc
            meta = MetaData()
            meta.reflect(connection)
            out.write(_line({"format": FORMAT, "version": VERSION, "revision": revision, "dialect": engine.dialect.name}))
            rows: dict[str, int] = {}
            for table in meta.sorted_tables:
                if table.name == ALEMBIC_TABLE:
                    continue
                columns = list(table.columns)
                kinds = [_kind(c.type) for c in columns]
                out.write(_line({"table": table.name, "columns": [c.name for c in columns], "kinds": kinds}))
                order = list(table.primary_key.columns) or columns
                result = connection.execution_options(yield_per=1000).execute(select(table).order_by(*order))
                count = 0
                for row in result:
                    observe(table.name, dict(row._mapping))
                    out.write(_line([_encode(v, k) for v, k in zip(row, kinds)]))
                    count += 1
                rows[table.name] = count
            out.write(_line({"end": True, "rows": rows}))
            return DumpSummary(str(revision), engine.dialect.name, rows)
    except SQLAlchemyError as exc:
        raise DumpError(
            f"could not read the database at {shown(url)} ({_first_line(exc)}); check that it is running "
            "and that --data and MIST_DATABASE_URL name the server's"
        ) from exc
    finally:
        engine.dispose()


def _first_line(exc: Exception) -> str:
    return f"{exc.__class__.__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"


# Reading a dump back


def _decode(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "bytes":
        return base64.b64decode(value)
    if kind == "datetime":
        return datetime.fromisoformat(value)
    return value


@dataclass(frozen=True)
class Header:
    revision: str
    dialect: str


def read_header(lines: Iterator[bytes]) -> Header:
    try:
        first = json.loads(next(lines))
    except (StopIteration, ValueError) as exc:
        raise DumpError("the database dump is empty or not JSON") from exc
    if not isinstance(first, dict) or first.get("format") != FORMAT:
        raise DumpError("the database dump does not start with a Mist dump header")
    if first.get("version") != VERSION:
        raise DumpError(
            f"the database dump is format version {first.get('version')!r}; this Mist reads {VERSION}: "
            "restore with the Mist version that made the backup"
        )
    return Header(str(first["revision"]), str(first.get("dialect", "")))


def rows(lines: Iterator[bytes]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(table, row) for every row after the header; DumpError if the dump was cut short or does not add up."""
    table, columns, kinds = "", [], []  # type: tuple[str, list[str], list[str]]
    counted: dict[str, int] = {}
    for raw in lines:
        try:
            item = json.loads(raw)
        except ValueError as exc:
            raise DumpError(f"the database dump has a line that is not JSON in table {table or '?'}") from exc
        if isinstance(item, list):
            if not table or len(item) != len(columns):
                raise DumpError(f"the database dump has a malformed row in table {table or '?'}")
            counted[table] = counted.get(table, 0) + 1
            yield table, {c: _decode(v, k) for c, v, k in zip(columns, item, kinds)}
        elif isinstance(item, dict) and "table" in item:
            table, columns, kinds = item["table"], item["columns"], item["kinds"]
            counted.setdefault(table, 0)
        elif isinstance(item, dict) and item.get("end"):
            if item.get("rows") != counted:
                raise DumpError(f"the database dump's rows do not add up (counted {counted}, recorded {item.get('rows')})")
            return
        else:
            raise DumpError("the database dump has a line that is neither a table, a row nor its end")
    raise DumpError("the database dump ends before its last line: it was cut short")


# Loading


def _alembic(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def known_revision(revision: str) -> bool:
    """Whether this Mist's migrations know a schema revision (a newer Mist's backup names one it does not)."""
    script = ScriptDirectory.from_config(_alembic())
    try:
        return script.get_revision(revision) is not None
    except CommandError:
        return False


def head_revision() -> str:
    return str(ScriptDirectory.from_config(_alembic()).get_current_head())


def _clear(connection: Connection) -> None:
    meta = MetaData()
    meta.reflect(connection)
    meta.drop_all(connection)


def load(url: str, lines: Iterator[bytes], force: bool = False) -> DumpSummary:
    """Load a dump into the database at `url`, which must hold no tables (unless `force`: they are dropped), then
    migrate it to the newest revision. One transaction: on PostgreSQL a failed load leaves nothing behind."""
    header = read_header(lines)
    if not known_revision(header.revision):
        raise DumpError(
            f"the backup's database is at schema revision {header.revision!r}, which this Mist does not know "
            f"(its newest is {head_revision()!r}): restore with the Mist version that made the backup, or a newer one"
        )
    engine = open_engine(url)
    try:
        with engine.begin() as connection:
            existing = inspect(connection).get_table_names()
            if existing and not force:
                raise DatabaseNotEmpty(
                    f"the database at {shown(url)} already has tables ({', '.join(sorted(existing)[:5])}); "
                    "restore into an empty database, or pass --force to replace what it holds"
                )
            if existing:
                _clear(connection)
            command.upgrade(_alembic(connection), header.revision)
            meta = MetaData()
            meta.reflect(connection)
            counts: dict[str, int] = {}
            batch: list[dict[str, Any]] = []
            current = ""
            for table, row in rows(lines):
                if table != current:
                    _insert(connection, meta, current, batch)
                    batch, current = [], table
                    if table not in meta.tables:
                        raise DumpError(f"the dump has table {table!r}, which revision {header.revision} does not")
                batch.append(row)
                counts[table] = counts.get(table, 0) + 1
                if len(batch) >= INSERT_BATCH:
                    _insert(connection, meta, table, batch)
                    batch = []
            _insert(connection, meta, current, batch)
            if engine.dialect.name == "postgresql":
                _restart_sequences(connection, meta)
            command.upgrade(_alembic(connection), "head")
        return DumpSummary(header.revision, engine.dialect.name, counts)
    except SQLAlchemyError as exc:
        raise DumpError(
            f"could not load the dump into {shown(url)} ({_first_line(exc)}); check that the database "
            "is running and MIST_DATABASE_URL is right, then run the restore again"
        ) from exc
    finally:
        engine.dispose()


def tables_in(url: str) -> list[str]:
    """The tables a database holds already (a restore refuses to load into one that holds any)."""
    engine = open_engine(url)
    try:
        with engine.connect() as connection:
            return sorted(inspect(connection).get_table_names())
    except SQLAlchemyError as exc:
        raise DumpError(
            f"could not open the database at {shown(url)} ({_first_line(exc)}); check that it is running "
            "and that MIST_DATABASE_URL is right"
        ) from exc
    finally:
        engine.dispose()


def _insert(connection: Connection, meta: MetaData, table: str, batch: list[dict[str, Any]]) -> None:
    if batch:
        connection.execute(meta.tables[table].insert(), batch)


def _restart_sequences(connection: Connection, meta: MetaData) -> None:
    """Rows came with their ids, so PostgreSQL's id sequences must start after the largest one."""
    for table in meta.sorted_tables:
        keys = list(table.primary_key.columns)
        if len(keys) != 1 or not isinstance(keys[0].type, Integer):
            continue
        largest = connection.execute(select(func.max(keys[0]))).scalar() or 0
        connection.execute(
            text("SELECT setval(pg_get_serial_sequence(:t, :c), :v, false)"),
            {"t": table.name, "c": keys[0].name, "v": largest + 1},
        )
