"""A real tracker application on a temporary data directory, with its admin logged in."""

from __future__ import annotations

import pytest

from tracker.accounts import ensure_admin
from tracker.config import Settings, TrackerContext
from tracker.embedded import build_app

ADMIN_PASSWORD = "admin-password-1"


@pytest.fixture
async def admin_session(tmp_path, aiohttp_client, monkeypatch):
    """(context, test client, the admin's Authorization header)."""
    monkeypatch.setenv("MIST_ADMIN_PASSWORD", ADMIN_PASSWORD)
    ctx = TrackerContext.open(Settings(data=tmp_path))
    ensure_admin(ctx)
    client = await aiohttp_client(build_app(ctx))
    login = await client.post("/api/login", json={"user": "admin", "password": ADMIN_PASSWORD})
    return ctx, client, {"Authorization": f"Bearer {(await login.json())['access_token']}"}
