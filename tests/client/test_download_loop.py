"""The one download loop against a fake seeder and this disk, on a fake clock: local copies first, the network for
the rest, corrupt and lost answers retried elsewhere or again, and the failures worded as before."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from client import swarm
from client.errors import DownloadFailed
from client.plan import Location
from client.sources import Seeder
from shared import compression, pack
from tests.clock import Clock


class FakeSeeder:
    """Answers /fetch from `chunks` (sha -> bytes); `damaged` chunks come with other bytes; `silent_first` never
    answers its first request (the loop must give up on it by the clock and ask again)."""

    def __init__(self, chunks: dict[str, bytes], damaged: set[str] = frozenset(), clock: Clock | None = None,
                 silent_first: bool = False) -> None:
        self.chunks, self.damaged, self.clock, self.silent_first = chunks, set(damaged), clock, silent_first
        self.asked: list[list[str]] = []

    async def seeder(self, url: str, ticket: str, body: bytes, most: int) -> bytes:
        hashes = pack.decode_hashes(body, 4096)
        self.asked.append(hashes)
        if self.silent_first and len(self.asked) == 1:
            assert self.clock is not None
            self.clock.now += 3600  # the request is long past its deadline the next time the loop looks
            await asyncio.Event().wait()
        records = []
        for h in hashes:
            data = self.chunks[h] if h not in self.damaged else b"not the chunk" * 10
            records.append(pack.Record(pack.CHUNK, h, compression.compress(data)))
        return pack.encode(records)

    seeder_answer = seeder  # the chunk batches' way (client.api reads those in place); nothing to give back here

    def give_back(self, answer: bytes) -> None:
        pass

    def let_buffers_go(self) -> None:
        pass


class Bar:
    def __init__(self) -> None:
        self.total = 0

    def advance(self, amount: int) -> None:
        self.total += amount


async def ticket() -> str:
    return "ticket"


def chunks_of(*blocks: bytes) -> dict[str, bytes]:
    return {hashlib.sha256(b).hexdigest(): b for b in blocks}


def staged(tmp_path: Path, chunks: dict[str, bytes]) -> tuple[Path, dict[str, list[tuple[Path, int]]], dict[str, int]]:
    target = tmp_path / "staged.bin"
    target.write_bytes(b"\0" * sum(len(b) for b in chunks.values()))
    targets, sizes, at = {}, {}, 0
    for h, data in chunks.items():
        targets[h], sizes[h] = [(target, at)], len(data)
        at += len(data)
    return target, targets, sizes


async def test_chunks_on_this_disk_are_copied_and_only_the_rest_fetched(tmp_path: Path) -> None:
    chunks = chunks_of(b"a" * 5000, b"b" * 7000, b"c" * 3000)
    (a, b, c), blocks = list(chunks), list(chunks.values())
    old = tmp_path / "old.bin"
    old.write_bytes(blocks[0] + b"B" * 7000)  # holds a; where b should be, damage
    local = {a: (Location(str(old), 0),), b: (Location(str(old), 5000),)}
    target, targets, sizes = staged(tmp_path, chunks)
    seeder, written = FakeSeeder(chunks), []
    tally = await swarm.download(seeder, Seeder("http://seeder", ticket), sizes, targets, Bar(),  # type: ignore[arg-type]
                                 written.extend, None, local=local)
    assert sorted(h for batch in seeder.asked for h in batch) == sorted([b, c])  # a came from the disk
    assert target.read_bytes() == b"".join(blocks)
    assert tally.copied == 5000 and tally.from_network == {b, c} and tally.written == 15000
    assert written.count(target) == 3  # each position reported once


async def test_a_chunk_the_seeder_keeps_sending_corrupt_stops_the_download_and_is_never_written(tmp_path: Path) -> None:
    chunks = chunks_of(b"x" * 4000, b"y" * 4000)
    bad = list(chunks)[1]
    target, targets, sizes = staged(tmp_path, chunks)
    seeder = FakeSeeder(chunks, damaged={bad})
    with pytest.raises(ExceptionGroup) as caught:
        await swarm.download(seeder, Seeder("http://seeder", ticket), sizes, targets, Bar(), [].extend, None)  # type: ignore[arg-type]
    failure = caught.value.exceptions[0]
    assert isinstance(failure, DownloadFailed) and "arrived corrupt 3 times" in str(failure) and bad[:12] in str(failure)
    assert sum(1 for batch in seeder.asked if bad in batch) == 3
    assert target.read_bytes()[4000:] == b"\0" * 4000  # the bad bytes never reached the file


async def test_an_answer_that_never_comes_is_asked_again_when_the_clock_passes_its_deadline(tmp_path: Path) -> None:
    clock = Clock()
    chunks = chunks_of(b"p" * 6000, b"q" * 6000)
    target, targets, sizes = staged(tmp_path, chunks)
    seeder = FakeSeeder(chunks, clock=clock, silent_first=True)
    download = swarm._Download(seeder, Seeder("http://seeder", ticket), sizes, targets, Bar(), [].extend,  # type: ignore[arg-type]
                               None, "ab" * 32, clock=clock)
    tally = await asyncio.wait_for(download.run([]), 30)
    assert len(seeder.asked) == 2 and sorted(seeder.asked[1]) == sorted(chunks)
    assert target.read_bytes() == b"".join(chunks.values()) and tally.from_network == set(chunks)
