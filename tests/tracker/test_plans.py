"""The plan route on a real tracker app and store: patches chosen, made once for friends asking at once."""

from __future__ import annotations

import asyncio
import random

import pytest

from shared.chunking import DEFAULT_PARAMS
from shared.chunkstore import DirectoryChunkStore
from shared.manifest import Manifest
from tests.stored import store_file
from tracker.routes import updates

OLD = random.Random(1).randbytes(600_000)
NEW = bytes(b ^ 1 if i % 5000 == 0 else b for i, b in enumerate(OLD))  # changed all through: no chunk survives


def stored_build(store: DirectoryChunkStore, version: str, data: bytes) -> Manifest:
    return Manifest("jump", version, DEFAULT_PARAMS, (store_file(store, "engine.so", data),))


@pytest.fixture
async def tracker(admin_session):
    ctx, client, admin = admin_session
    await client.post("/api/games", json={"slug": "jump", "title": "Jump"}, headers=admin)
    builds = [stored_build(ctx.store, "1", OLD), stored_build(ctx.store, "2", NEW)]
    for build in builds:
        assert (await client.post("/api/games/jump/builds", data=build.canonical_bytes(), headers=admin)).status == 201
    return client, admin, builds


async def test_friends_asking_for_the_same_new_jump_at_once_share_one_quick_patch(tracker, monkeypatch) -> None:
    client, admin, (v1, _) = tracker
    made: list[int] = []
    real = updates.make_all

    def counting(store, pairs, *rest):  # the real maker, counted
        made.append(len(pairs))
        return real(store, pairs, *rest)

    monkeypatch.setattr(updates, "make_all", counting)
    body = {"have": [v1.digest()], "write": ["engine.so"]}
    answers = await asyncio.gather(*(client.post("/api/games/jump/builds/2/plan", json=body, headers=admin) for _ in range(4)))
    plans = [await a.json() for a in answers]
    assert sum(made) == 1, f"the patch was made {sum(made)} times"
    for plan in plans:
        [choice] = plan["files"]
        assert choice["source"] == "patch" and choice["bytes"] * 10 < choice["chunk_bytes"], choice
        assert choice["patch"]["algorithm"] == "zstd" and [c["path"] for c in plan["coming"]] == ["engine.so"]
