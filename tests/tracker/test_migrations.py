"""Migrations from empty and from the previous schema, with data in it."""

from __future__ import annotations

import datetime

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, inspect, select, text
from sqlalchemy.orm import Session

from tests import backends
from tracker.db.engine import MIGRATIONS, migrate, open_engine
from tracker.db.models import Base


def upgrade_to(engine, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def test_migrating_from_empty_creates_exactly_the_models(tmp_path) -> None:
    engine = open_engine(backends.database_url(tmp_path))
    migrate(engine)
    tables = set(inspect(engine).get_table_names()) - {"alembic_version"}
    assert tables == set(Base.metadata.tables)
    for name, table in Base.metadata.tables.items():
        assert {c["name"] for c in inspect(engine).get_columns(name)} == {c.name for c in table.columns}, name


def test_games_from_the_first_schema_become_public_games(tmp_path) -> None:
    engine = open_engine(backends.database_url(tmp_path))
    upgrade_to(engine, "0001")
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO games (slug, title, created_at) VALUES ('old', 'Old', '2026-01-01')"))
    migrate(engine)
    with engine.begin() as connection:
        assert connection.execute(text("SELECT private FROM games WHERE slug = 'old'")).scalar_one() in (0, False)
        assert connection.execute(text("SELECT count(*) FROM grants")).scalar_one() == 0


REVISIONS = sorted(p.name.split("_")[0] for p in (MIGRATIONS / "versions").glob("0*.py"))


def _a_value(column):  # type: ignore[no-untyped-def]
    """A plausible value for any column of the schema; every text is "x" so foreign keys to texts match."""
    python = column.type.python_type
    if python is bool:
        return False
    if python is int:
        return 1
    if python is float:
        return 1.0
    if python is bytes:
        return b"x"
    if python is datetime.datetime:
        return datetime.datetime(2026, 1, 1)
    return "x"


@pytest.mark.parametrize("revision", REVISIONS[:-1])
def test_a_database_of_every_earlier_schema_with_data_in_every_table_migrates_to_the_newest(tmp_path, revision: str) -> None:
    engine = open_engine(backends.database_url(tmp_path))
    upgrade_to(engine, revision)
    old = MetaData()
    old.reflect(engine)
    tables = [t for t in old.sorted_tables if t.name != "alembic_version"]
    with engine.begin() as connection:
        for table in tables:
            connection.execute(table.insert().values({c.name: _a_value(c) for c in table.columns}))
    migrate(engine)
    with Session(engine) as session:
        for table in tables:
            assert session.execute(text(f"SELECT count(*) FROM {table.name}")).scalar_one() == 1, table.name
        for mapper in Base.registry.mappers:  # the newest models read what the old schema held
            session.scalars(select(mapper.class_)).all()
        if engine.dialect.name == "sqlite":  # the copies SQLite makes to alter a table kept every reference whole
            assert session.execute(text("PRAGMA foreign_key_check")).all() == []
