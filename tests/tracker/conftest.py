"""A real tracker application on a temporary data directory, with its admin logged in."""

from __future__ import annotations

import pytest

from tests import backends
from tracker.cli.mist_server import build_app
from tracker.config import TrackerContext
from tracker.routes.accounts import ensure_admin

ADMIN_PASSWORD = "admin-password-1"


@pytest.fixture
async def admin_session(tmp_path, aiohttp_client, monkeypatch):
    """(context, test client, the admin's Authorization header). No worker runs beside it: a test that needs a
    job done runs it (`ctx.jobs.huey.execute`), and the queue holds exactly what the tracker put there."""
    ctx = TrackerContext.open(backends.settings(tmp_path, admin_password=ADMIN_PASSWORD))
    ensure_admin(ctx)
    client = await aiohttp_client(build_app(ctx, worker=False))
    login = await client.post("/api/login", json={"user": "admin", "password": ADMIN_PASSWORD})
    return ctx, client, {"Authorization": f"Bearer {(await login.json())['access_token']}"}
