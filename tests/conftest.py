"""The suite's order, and its two passes: the embedded default, then PostgreSQL and Redis (tests/backends.py).

The first pass runs everything. The second runs what the backend changes, within the 15 minutes the
whole suite has: every tracker test in this process (each route, query, job, migration and backup
against the run's database and queue), and the tracker, seeder and worker apart as deployed,
on PostgreSQL and Redis. Modules marked `same_on_every_backend` (pure logic, static files, servers of
their own) run in the first pass only.

The longest modules go first, so that the test workers finish together instead of one of them
running a long module alone at the end.

The property tests (`test_*_properties.py`) run under one Hypothesis profile: `ci` by default, a bounded
and deterministic run that keeps the suite's time and result the same on every machine; `long`
(HYPOTHESIS_PROFILE=long) explores many more inputs, randomly, when hunting for bugs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from tests import backends
from tracker.settings import PASSWORD_COST_ENV

# Every tracker the suite starts hashes passwords at argon2's cheapest cost: the processes tests start inherit
# this, and tests/backends.py gives it to the settings tests build. tests/tracker/test_passwords.py runs the
# standard cost.
os.environ.setdefault(PASSWORD_COST_ENV, "cheapest")

HERE = Path(__file__).parent
SECOND_PASS = (HERE / "tracker", HERE / "e2e" / "test_split_services.py")
LONGEST_FIRST = ("test_bundle.py", "test_peers.py", "test_key_rotation.py", "test_nat.py", "test_backups.py", "test_install_update.py",
                 "test_backend_faults.py", "test_patches.py", "test_app.py", "test_observability.py", "test_news.py", "test_friend_install.py")

# `ci`: the same examples on every run and machine (derandomize), about 12 s of CPU for all the property tests,
# no deadline and no timing health check, since a loaded machine is slow, not wrong. `long`: fifty times as
# many examples, new ones on each run, failures kept in .hypothesis/ and replayed first.
settings.register_profile("ci", max_examples=100, derandomize=True, database=None, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=5_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_report_header(config: pytest.Config) -> str:
    return f"mist backend: {backends.name()}"


def _order(item: pytest.Item) -> tuple[int, int]:
    name = item.path.name
    if name in LONGEST_FIRST:
        return 0, LONGEST_FIRST.index(name)
    return (1 if item.path.is_relative_to(HERE / "e2e") else 2), 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=_order)  # stable: within a module, tests keep their order
    if not backends.POSTGRES:
        return
    keep = [item for item in items if any(item.path.is_relative_to(p) for p in SECOND_PASS)
            and item.get_closest_marker("same_on_every_backend") is None]
    dropped = [item for item in items if item not in keep]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@pytest.fixture(scope="session")
def s3_server() -> Iterator[Any]:
    """moto's S3 server on loopback, one per test process that asks for it (tests/s3.py)."""
    from tests import s3  # boto3 and moto load only in the processes that use them

    yield from s3.serving()
