"""A commit that trusts the previous build's chunks to be stored adds the new build only while that build is still
in the catalog (queries.add_build `vouched_by`): the garbage collector keeps a build's chunks only while some build
in the catalog has them, so between the two there must be no moment with neither."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import backends
from tracker.db import queries
from tracker.db.engine import Database, migrate, open_engine

OLD, NEW, NEWER = "a" * 64, "b" * 64, "c" * 64


@pytest.fixture
def db(tmp_path: Path) -> Database:
    engine = open_engine(backends.database_url(tmp_path))
    migrate(engine)
    database = Database(engine)
    database.call(lambda s: queries.add_game(s, "g", "G"))
    database.call(lambda s: queries.add_build(s, "g", "1", OLD, b"{}", "sig", 1, 1, 1, 1))
    return database


def versions(db: Database) -> list[str]:
    return sorted(b.version for b in db.call(lambda s: queries.get_game(s, "g", queries.Viewer("", True))).builds)


def test_a_build_vouched_for_by_one_still_there_is_added(db: Database) -> None:
    row, created = db.call(lambda s: queries.add_build(s, "g", "2", NEW, b"{}", "sig", 1, 1, 1, 1, vouched_by=OLD))
    assert created and row.version == "2" and versions(db) == ["1", "2"]


def test_a_build_vouched_for_by_one_removed_meanwhile_is_not_added(db: Database) -> None:
    db.call(lambda s: queries.remove_build(s, "g", "1"))
    with pytest.raises(queries.PreviousGone):
        db.call(lambda s: queries.add_build(s, "g", "2", NEWER, b"{}", "sig", 1, 1, 1, 1, vouched_by=OLD))
    assert versions(db) == []  # rolled back: the commit checks every chunk and adds it then
