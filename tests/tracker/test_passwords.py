"""Passwords are argon2id with the parameters recorded in each hash, upgraded at the next login when they change."""

from __future__ import annotations

import argon2

from tests import backends
from tracker import auth
from tracker.cli.mist_server import build_app
from tracker.config import TrackerContext
from tracker.db import queries
from tracker.routes.accounts import ensure_admin


def test_hashes_are_argon2id_with_their_parameters() -> None:
    stored = auth.hash_password("correct horse")
    assert stored.startswith("$argon2id$") and "m=" in stored and "t=" in stored
    assert auth.check_password(stored, "correct horse") and not auth.check_password(stored, "wrong horse")
    assert not auth.check_password("not a hash", "x")


async def test_an_old_hash_is_upgraded_at_login(tmp_path, aiohttp_client, monkeypatch) -> None:
    ctx = TrackerContext.open(backends.settings(tmp_path, admin_password="admin-password-1"))
    ensure_admin(ctx)
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash("admin-password-1")
    ctx.db.call(lambda s: queries.set_password_hash(s, "admin", weak))
    client = await aiohttp_client(build_app(ctx, worker=False))
    response = await client.post("/api/login", json={"user": "admin", "password": "admin-password-1"})
    assert response.status == 200
    upgraded = ctx.db.call(lambda s: queries.get_user(s, "admin")).password_hash
    assert upgraded != weak and not auth.needs_rehash(upgraded)
    assert auth.check_password(upgraded, "admin-password-1")
