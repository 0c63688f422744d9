"""The tracker's /healthz: 200 while its database and job queue answer, 503 naming each that does not."""

from __future__ import annotations

import os

import pytest

from tests import backends
from tests.scrape import Scrape
from tracker.app import make_app
from tracker.config import TrackerContext

pytestmark = pytest.mark.same_on_every_backend  # takes the database away by removing its SQLite file


async def test_healthz_is_ok_then_names_the_database_and_the_queue_once_they_are_gone(tmp_path, aiohttp_client) -> None:
    ctx = TrackerContext.open(backends.settings(tmp_path))
    client = await aiohttp_client(make_app(ctx))
    healthy = await client.get("/healthz")
    assert healthy.status == 200
    assert await healthy.json() == {"ok": True, "pid": os.getpid(), "database": "ok", "jobs": "ok", "disk": "ok"}

    # Both files removed and the open connections dropped (as when the disk or the database server goes away):
    # SQLite would make new empty files, which have none of the tables, so the checks must read real ones.
    for name in ("tracker.db", "tracker.db-wal", "tracker.db-shm", "jobs.db", "jobs.db-wal", "jobs.db-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    ctx.db.engine.dispose()
    ctx.jobs.huey.storage.close()

    broken = await client.get("/healthz")
    assert broken.status == 503
    body = await broken.json()
    assert body["ok"] is False
    assert body["database"].startswith("the database does not answer") and "alembic_version" in body["database"]
    assert body["jobs"].startswith("the job queue's storage does not answer")

    # /metrics still answers, without the job numbers it cannot read.
    scraped = await client.get("/metrics")
    assert scraped.status == 200
    metrics = Scrape(await scraped.text())
    assert metrics[("mist_http_requests_total", {"route": "/healthz", "status": "503"})] == 1
    assert metrics[("mist_http_requests_total", {"route": "/healthz", "status": "200"})] == 1
    assert not metrics.has("mist_jobs_pending")
