"""Test helper: a new, empty PostgreSQL database on this run's server (tests/backends.py), dropped afterwards.

Tests that restore need a database of their own: a restore refuses one that holds tables. In the embedded
pass there is no PostgreSQL server: those tests skip there and run in the PostgreSQL pass.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, make_url, text


from tests import backends


def configured_postgres() -> str:
    return backends.POSTGRES


@contextmanager
def fresh_postgres() -> Iterator[str]:
    configured = configured_postgres()
    if not configured:
        pytest.skip("no PostgreSQL in the embedded pass; this runs in the PostgreSQL pass (scripts/test)")
    name = f"mist_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(make_url(configured), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(configured).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
