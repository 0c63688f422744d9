"""Which database and job queue the tests' trackers use.

By default, the embedded default: SQLite and a SQLite queue in each data
directory. With MIST_TEST_POSTGRES (a PostgreSQL URL whose user may create
databases) and MIST_TEST_REDIS (a Redis URL) set, as `scripts/test` does for
the suite's second run, every data directory gets a database of its own on
that server and a queue of its own in that Redis, so tests stay independent.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, make_url, text

from tracker.settings import PASSWORD_COST_ENV, Settings

POSTGRES = os.environ.get("MIST_TEST_POSTGRES", "")
REDIS = os.environ.get("MIST_TEST_REDIS", "")
_given: dict[Path, dict[str, str]] = {}


def name() -> str:
    """The backend this run tests, for messages and skips."""
    return "postgres+redis" if POSTGRES else "embedded"


def new_database(server: str = "") -> str:
    """A new, empty PostgreSQL database on `server` (default: this run's); its URL."""
    server = server or POSTGRES
    database = f"mist_test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{database}"'))
    finally:
        admin.dispose()
    return make_url(server).set(database=database).render_as_string(hide_password=False)


def database_url(data: Path) -> str:
    """The database URL a tracker on `data` uses in this run (the same on every call)."""
    return backend_env(data).get("MIST_DATABASE_URL") or f"sqlite:///{data / 'tracker.db'}"


def backend_env(data: Path) -> dict[str, str]:
    """Environment for a tracker or worker on `data`: empty for the embedded default; the same on every
    call for one data directory, so a restarted tracker finds its database and queue again."""
    key = Path(data).resolve()
    if key not in _given:
        env: dict[str, str] = {}
        if POSTGRES:
            env["MIST_DATABASE_URL"] = new_database()
        if REDIS:
            env["MIST_REDIS_URL"] = REDIS
            env["MIST_QUEUE_NAME"] = f"mist-test-{uuid.uuid4().hex[:16]}"
        _given[key] = env
    return dict(_given[key])


def settings(data: Path, **given: Any) -> Settings:
    """The settings of a tracker or worker on `data` in this run: its database and queue (as `backend_env`), the
    suite's password cost (tests/conftest.py), the defaults for the rest, and `given` over them. Tests build
    settings; they do not patch the environment."""
    cost = {PASSWORD_COST_ENV: os.environ.get(PASSWORD_COST_ENV, "")}
    return Settings.from_env(data, {**cost, **backend_env(data)}, **given)
