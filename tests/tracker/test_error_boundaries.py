"""The tracker's layers translate their libraries' errors at their own boundary: the web layer sees Mist's errors.

A database out of reach is DatabaseUnavailable from `Database.call` (a bad statement stays a bug), and Redis
out of reach is QueueUnavailable from `Jobs`, both real: a closed port on loopback, not a mock.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from tracker.db.engine import Database
from tracker.errors import DatabaseUnavailable, QueueUnavailable
from tracker.jobs.queue import open_jobs
from tracker.settings import Settings


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once it is closed


def test_a_database_out_of_reach_is_database_unavailable_with_a_retry_after() -> None:
    engine = create_engine(f"postgresql+psycopg://mist@127.0.0.1:{closed_port()}/mist", connect_args={"connect_timeout": 5})
    with pytest.raises(DatabaseUnavailable) as raised:
        Database(engine).call(lambda session: session.execute(text("SELECT 1")).all())
    assert raised.value.status == 503 and raised.value.headers == {"Retry-After": "5"}
    assert raised.value.detail == {"unavailable": "database"} and "try again" in str(raised.value)


def test_a_bad_statement_is_not_taken_for_an_outage(tmp_path: Path) -> None:
    db = Database(create_engine(f"sqlite:///{tmp_path / 'x.db'}"))
    with pytest.raises(OperationalError):
        db.call(lambda session: session.execute(text("SELECT nothing FROM nowhere")).all())


def test_redis_out_of_reach_is_queue_unavailable(tmp_path: Path) -> None:
    jobs = open_jobs(Settings(tmp_path, redis_url=f"redis://127.0.0.1:{closed_port()}/0"))
    for attempt in (jobs.enqueue_gc, lambda: jobs.known("x"), lambda: jobs.result("x")):
        with pytest.raises(QueueUnavailable) as raised:
            attempt()
        assert raised.value.status == 503 and "job queue is unavailable" in str(raised.value)
