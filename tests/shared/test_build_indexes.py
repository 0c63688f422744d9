"""The servers' kept build indexes: bounded by bytes, least recently used dropped first, one making per build
however many plans ask for it at once, and a manifest that could not be read is not remembered."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable

import pytest

from shared.build_index import BuildIndex
from shared.chunking import DEFAULT_PARAMS, ChunkRef
from shared.manifest import FileEntry, Manifest
from shared.build_indexes import BuildIndexes

pytestmark = pytest.mark.same_on_every_backend  # pure: no database or store


def manifest(version: str, files: int = 20) -> bytes:
    entries = []
    for n in range(files):
        chunk = hashlib.sha256(f"{version}/{n}".encode()).hexdigest()
        entries.append(FileEntry(f"f{n:03d}", 100, False, hashlib.sha256(chunk.encode()).hexdigest(), (ChunkRef(chunk, 100),)))
    return Manifest("kept", version, DEFAULT_PARAMS, tuple(entries)).canonical_bytes()


BUILDS = {v: manifest(v) for v in ("1", "2", "3")}
EACH = BuildIndex.scan(BUILDS["1"]).nbytes


def reader(asked: list[str]) -> Callable[[str], Callable[[], Awaitable[bytes]]]:
    def read(version: str) -> Callable[[], Awaitable[bytes]]:
        async def data() -> bytes:
            asked.append(version)
            return BUILDS[version]

        return data

    return read


async def test_the_least_recently_used_go_first_past_the_budget_and_a_kept_one_is_not_read_again() -> None:
    asked: list[str] = []
    read = reader(asked)
    kept = BuildIndexes(kept_bytes=2 * EACH)
    first = await kept.index("1", read("1"))
    assert first.version == "1" and first.file("f003") is not None
    await kept.index("2", read("2"))
    assert await kept.index("1", read("1")) is first  # kept: its manifest is not read again, and it is now the newest
    await kept.index("3", read("3"))
    assert kept.kept() == ["1", "3"] and asked == ["1", "2", "3"]
    assert kept.nbytes <= 2 * EACH


async def test_a_build_bigger_than_the_budget_is_still_kept_while_it_is_the_newest() -> None:
    kept = BuildIndexes(kept_bytes=1)
    asked: list[str] = []
    await kept.index("1", reader(asked)("1"))
    await kept.index("2", reader(asked)("2"))
    assert kept.kept() == ["2"]


async def test_plans_asking_for_the_same_build_at_once_share_one_making() -> None:
    asked: list[str] = []
    started, release = asyncio.Event(), asyncio.Event()

    async def slow() -> bytes:
        asked.append("1")
        started.set()
        await release.wait()
        return BUILDS["1"]

    kept = BuildIndexes()
    waiting = [asyncio.ensure_future(kept.index("1", slow)) for _ in range(4)]
    await started.wait()  # the first is reading; the others (started in order before it awaited) find it making
    release.set()
    made = await asyncio.gather(*waiting)
    assert asked == ["1"] and all(m is made[0] for m in made)


async def test_a_manifest_that_could_not_be_read_reaches_every_asker_and_is_not_remembered() -> None:
    kept = BuildIndexes()
    calls: list[int] = []

    async def broken() -> bytes:
        calls.append(1)
        await asyncio.sleep(0)  # a turn of the loop (no waiting on time): the second asker comes in meanwhile
        raise OSError("the database went away")

    results = await asyncio.gather(kept.index("1", broken), kept.index("1", broken), return_exceptions=True)
    assert [type(r) for r in results] == [OSError, OSError] and len(calls) == 1
    assert kept.kept() == []
    assert (await kept.index("1", reader([])("1"))).version == "1"  # asked again, it is read again
