"""Passwords are argon2id with the parameters recorded in each hash, upgraded at the next login when they change.

The suite hashes at argon2's cheapest cost (tests/conftest.py); these tests are where the standard cost runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import backends
from tests.tracker.admin_site import sign_in
from tracker import auth
from tracker.cli.mist_server import build_app
from tracker.config import TrackerContext
from tracker.db import queries
from tracker.routes.accounts import ensure_admin
from tracker.settings import PASSWORD_COSTS, Settings

STANDARD = "m=65536,t=3,p=4"  # RFC 9106's low-memory profile, as the hash records it


def test_hashes_are_argon2id_with_their_parameters() -> None:
    passwords = auth.Passwords("cheapest")
    stored = passwords.hash("correct horse")
    assert stored.startswith("$argon2id$") and "m=8,t=1,p=1" in stored
    assert passwords.check(stored, "correct horse") and not passwords.check(stored, "wrong horse")
    assert not passwords.check("not a hash", "x") and not passwords.check(passwords.dummy_hash, "")


def test_every_cost_the_settings_name_has_parameters() -> None:
    assert set(auth.COSTS) == set(PASSWORD_COSTS)


def test_a_tracker_with_default_settings_hashes_at_the_standard_cost(tmp_path: Path) -> None:
    settings = Settings.from_env(tmp_path, {})
    assert settings.password_hash_cost == Settings(tmp_path).password_hash_cost == "standard"
    passwords = auth.Passwords(settings.password_hash_cost)
    stored = passwords.hash("correct horse")
    assert STANDARD in stored and passwords.check(stored, "correct horse") and not passwords.needs_rehash(stored)


@pytest.mark.parametrize("door", ["api", "admin site"])
async def test_a_hash_made_at_test_cost_is_upgraded_to_the_standard_cost_at_login(door: str, tmp_path, aiohttp_client) -> None:
    ctx = TrackerContext.open(backends.settings(tmp_path, admin_password="admin-password-1",
                                                password_hash_cost="standard"))
    ensure_admin(ctx)
    cheap = auth.Passwords("cheapest").hash("admin-password-1")
    ctx.db.call(lambda s: queries.set_password_hash(s, "admin", cheap))
    client = await aiohttp_client(build_app(ctx, worker=False))
    if door == "api":
        response = await client.post("/api/login", json={"user": "admin", "password": "admin-password-1"})
        assert response.status == 200
    else:
        await sign_in(client, "admin", "admin-password-1")
    upgraded = ctx.db.call(lambda s: queries.get_user(s, "admin")).password_hash
    assert STANDARD in upgraded and not ctx.passwords.needs_rehash(upgraded)
    assert ctx.passwords.check(upgraded, "admin-password-1")
