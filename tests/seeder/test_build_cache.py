"""The seeder reads a ticket's build through the process's kept indexes (shared/build_indexes.py): one the tracker
of the same process made is used as it is, and a manifest the store lacks or holds damaged is refused, not kept."""

from __future__ import annotations

import random

import pytest

from seeder.app import SeederContext
from shared import build_indexes, compression
from shared.build_indexes import BuildIndexes
from shared.chunking import DEFAULT_PARAMS, ChunkRef
from shared.errors import TicketError
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


async def test_an_index_another_server_of_the_process_made_is_used_without_reading_the_store() -> None:
    build = _build("1", 50)
    indexes = BuildIndexes()

    async def from_the_tracker() -> bytes:
        return build.canonical_bytes()

    made = await indexes.index(build.digest(), from_the_tracker)
    ctx = SeederContext(MemoryChunkStore(), Signer.generate().public_key, indexes=indexes)  # the manifest is not stored
    assert await ctx.build(build.digest()) is made


async def test_the_stored_manifest_is_indexed_once_and_kept() -> None:
    build, store = _build("1", 50), MemoryChunkStore()
    store.put(build.digest(), compression.compress(build.canonical_bytes()))
    ctx = SeederContext(store, Signer.generate().public_key, indexes=BuildIndexes())
    first = await ctx.build(build.digest())
    assert list(first.files()) == list(build.files)
    store.remove(build.digest())
    assert await ctx.build(build.digest()) is first


async def test_a_missing_or_damaged_manifest_is_refused_and_not_kept() -> None:
    build, store = _build("1", 50), MemoryChunkStore()
    ctx = SeederContext(store, Signer.generate().public_key, indexes=BuildIndexes())
    with pytest.raises(TicketError, match="not in this seeder's store"):
        await ctx.build(build.digest())
    store.put(build.digest(), compression.compress(_build("2", 50).canonical_bytes()))  # another build's bytes
    with pytest.raises(TicketError, match="damaged"):
        await ctx.build(build.digest())
    assert ctx.indexes.kept() == []
    store.remove(build.digest())
    store.put(build.digest(), compression.compress(build.canonical_bytes()))
    assert list((await ctx.build(build.digest())).files()) == list(build.files)


def test_the_seeder_and_the_tracker_of_one_process_share_their_indexes() -> None:
    from tracker.routes import updates

    ctx = SeederContext(MemoryChunkStore(), Signer.generate().public_key)
    assert ctx.indexes is build_indexes.SHARED and updates.INDEXES is build_indexes.SHARED
