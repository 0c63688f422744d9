"""Migrations from empty and from the previous schema, with data in it."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text

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
