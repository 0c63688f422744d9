"""Test helper: a new, empty PostgreSQL database on the server MIST_DATABASE_URL names, dropped afterwards.

Tests that restore need a database of their own: a restore refuses one that holds tables, and other tests
share the configured one. Without MIST_DATABASE_URL (or with a SQLite one) there is none: those tests skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, make_url, text


def configured_postgres() -> str:
    url = os.environ.get("MIST_DATABASE_URL", "")
    return url if url.startswith("postgresql") else ""


@contextmanager
def fresh_postgres() -> Iterator[str]:
    configured = configured_postgres()
    if not configured:
        pytest.skip("MIST_DATABASE_URL names no PostgreSQL server; the SQLite tests cover the rest")
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
