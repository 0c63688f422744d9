"""The seeder keeps the builds it serves as compact indexes, as many as fit its count and byte bounds."""

from __future__ import annotations

import random

import pytest

from seeder import app as seeder_app
from seeder.app import SeederContext
from shared import compression
from shared.chunking import DEFAULT_PARAMS, ChunkRef
from shared.manifest import FileEntry, Manifest
from shared.memory_store import MemoryChunkStore
from shared.signing import Signer

pytestmark = pytest.mark.same_on_every_backend  # a store in memory, no database


def _build(version: str, files: int) -> Manifest:
    rng = random.Random(version)
    entries = tuple(FileEntry(f"f{i:04d}.bin", 100, False, rng.randbytes(32).hex(),
                              (ChunkRef(rng.randbytes(32).hex(), 60), ChunkRef(rng.randbytes(32).hex(), 40)))
                    for i in range(files))
    return Manifest("game", version, DEFAULT_PARAMS, entries)


def test_builds_beyond_the_byte_budget_are_dropped_oldest_first_and_made_again_when_asked(monkeypatch) -> None:
    store = MemoryChunkStore()
    builds = [_build(str(v), 200) for v in range(3)]
    for build in builds:
        store.put(build.digest(), compression.compress(build.canonical_bytes()))
    ctx = SeederContext(store, Signer.generate().public_key)
    one = ctx.contents(builds[0].digest()).nbytes
    monkeypatch.setattr(seeder_app, "INDEX_BUDGET", 2 * one + one // 2)  # room for two
    for build in builds:
        ctx.contents(build.digest())
    assert [ctx.cached_contents(b.digest()) is not None for b in builds] == [False, True, True]
    again = ctx.contents(builds[0].digest())
    assert list(again.files()) == list(builds[0].files)
    assert [ctx.cached_contents(b.digest()) is not None for b in builds] == [True, False, True]
    monkeypatch.setattr(seeder_app, "INDEX_BUDGET", 1)  # the build in use is kept even when it alone is over
    ctx.contents(builds[1].digest())
    assert [ctx.cached_contents(b.digest()) is not None for b in builds] == [False, True, False]
