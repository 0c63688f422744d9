"""The tracker's kept manifest deltas: friends asking for one pair at once share one making; old pairs go."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from shared import manifest_delta
from tracker.manifest_deltas import DeltaCache

OLD = b'{"files":[' + b",".join(b'"%064x"' % i for i in range(2000)) + b"]}"
NEW = OLD.replace(b'"%064x"' % 7, b'"%064x"' % 99999)


async def test_concurrent_askers_share_one_making_and_later_ones_none() -> None:
    cache = DeltaCache()
    asked = 0
    gate = asyncio.Event()

    async def manifests() -> tuple[bytes, bytes]:
        nonlocal asked
        asked += 1
        await gate.wait()  # both askers are in before the first one's manifests arrive
        return OLD, NEW

    first = asyncio.create_task(cache.delta("a", "b", manifests))
    second = asyncio.create_task(cache.delta("a", "b", manifests))
    for _ in range(100):  # a turn of the loop each: both tasks start and the first one waits at the gate
        if asked == 1 and "making=1" in repr(cache):
            break
        await asyncio.sleep(0)
    assert asked == 1 and "making=1" in repr(cache)
    gate.set()
    one, two = await asyncio.gather(first, second)
    assert one == two and asked == 1
    assert manifest_delta.apply(OLD, one, hashlib.sha256(NEW).hexdigest()) == NEW
    assert await cache.delta("a", "b", manifests) == one and asked == 1


async def test_a_failed_making_reaches_every_asker_and_is_not_kept() -> None:
    cache = DeltaCache()

    async def broken() -> tuple[bytes, bytes]:
        raise LookupError("the base build was removed")

    with pytest.raises(LookupError):
        await cache.delta("a", "b", broken)

    async def fine() -> tuple[bytes, bytes]:
        return OLD, NEW

    assert await cache.delta("a", "b", fine)


async def test_the_oldest_pairs_go_first() -> None:
    cache = DeltaCache(kept=2)

    async def fine() -> tuple[bytes, bytes]:
        return OLD, NEW

    for base in ("a", "b", "c"):
        await cache.delta(base, "t", fine)
    assert repr(cache) == "DeltaCache(pairs=2, making=0)"


async def test_the_entries_form_of_a_pair_is_made_and_kept_apart_from_the_whole_form() -> None:
    from tests.shared.test_manifest_delta import big_manifest, canonical, next_version

    old, new = canonical(big_manifest(1)), canonical(next_version(big_manifest(1)))
    cache, asked = DeltaCache(), []

    async def manifests() -> tuple[bytes, bytes]:
        asked.append(1)
        return old, new

    whole = await cache.delta("a", "b", manifests)
    entries = await cache.delta("a", "b", manifests, manifest_delta.ENTRIES)
    assert not manifest_delta.read_header(whole).entries and manifest_delta.read_header(entries).entries
    assert await cache.delta("a", "b", manifests, manifest_delta.ENTRIES) == entries and len(asked) == 2
