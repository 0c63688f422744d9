"""The suite's two passes: the embedded default, then PostgreSQL and Redis (see tests/backends.py).

The second pass runs the tests that open a tracker, whose database and job queue change with the
backend; the pure tests of the shared core, the client and the seeder, and the type check, would run
the very same code again, so they run in the first pass only, as do the tracker-side modules marked
`same_on_every_backend` (pure logic, static files, or servers of their own).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import backends

HERE = Path(__file__).parent
USES_A_TRACKER = (HERE / "tracker", HERE / "e2e", HERE / "deploy")


def pytest_report_header(config: pytest.Config) -> str:
    return f"mist backend: {backends.name()}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not backends.POSTGRES:
        return
    keep = [item for item in items if any(item.path.is_relative_to(d) for d in USES_A_TRACKER)
            and item.get_closest_marker("same_on_every_backend") is None]
    dropped = [item for item in items if item not in keep]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
