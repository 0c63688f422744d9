"""The suite's two passes: the embedded default, then PostgreSQL and Redis (see tests/backends.py).

The first pass runs everything. The second runs what the backend changes, within the 15 minutes the
whole suite has: every tracker test in this process (each route, query, job and migration against the
run's database and queue), and the end-to-end modules that put the backend under the services as
deployed: the tracker, seeder and worker apart on PostgreSQL and Redis, jobs the worker runs from
Redis, accounts, and backups moving between SQLite and PostgreSQL. Modules marked
`same_on_every_backend` (pure logic, static files, servers of their own) run in the first pass only.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import backends

HERE = Path(__file__).parent
SECOND_PASS = (
    HERE / "tracker",
    HERE / "e2e" / "test_split_services.py",
    HERE / "e2e" / "test_gc.py",
    HERE / "e2e" / "test_accounts.py",
    HERE / "e2e" / "test_backups.py",
)


def pytest_report_header(config: pytest.Config) -> str:
    return f"mist backend: {backends.name()}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not backends.POSTGRES:
        return
    keep = [item for item in items if any(item.path.is_relative_to(p) for p in SECOND_PASS)
            and item.get_closest_marker("same_on_every_backend") is None]
    dropped = [item for item in items if item not in keep]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
