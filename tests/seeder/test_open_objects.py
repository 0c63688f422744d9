"""The seeder's open objects: sizes and files remembered for a while, never a descriptor closed under an answer."""

from __future__ import annotations

import os
import resource

import pytest

from seeder.open_objects import MOST_OPEN, TTL, OpenObjects, files_to_keep_open, raise_file_limit
from shared.errors import ChunkMissing
from shared import pack
from shared.chunkstore import DirectoryChunkStore
from tests.clock import Clock

NAMES = [f"{i:02x}" * 32 for i in range(6)]



@pytest.fixture
def store(tmp_path) -> DirectoryChunkStore:
    store = DirectoryChunkStore(tmp_path / "store", durable=False)
    for i, name in enumerate(NAMES):
        path = store.path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes([i]) * (100 + i))
    return store


def is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def test_a_record_is_the_size_and_header_remembered_until_the_ttl(store) -> None:
    clock = Clock()
    objects = OpenObjects(store, clock)
    name = NAMES[1]
    assert objects.record(name, clock.now) == (101, pack.encode_header(pack.CHUNK, name, 101))
    store.path(name).unlink()
    assert objects.record(name, clock.now + TTL / 2) == (101, pack.encode_header(pack.CHUNK, name, 101))
    assert objects.record(name, clock.now + TTL) is None  # looked at again: gone
    assert objects.record("ff" * 32, clock.now) is None


def test_answers_share_one_open_file_and_it_is_reopened_after_the_ttl(store) -> None:
    clock = Clock()
    objects = OpenObjects(store, clock)
    first = objects.acquire(NAMES[0], 100)
    second = objects.acquire(NAMES[0], 100)
    assert first is second and os.pread(first.fd, 200, 0) == b"\0" * 100
    objects.release(first)
    objects.release(second)
    assert is_open(first.fd)  # kept for the next answer
    clock.now += TTL
    third = objects.acquire(NAMES[0], 100)
    assert third is not first and first.evicted  # closed (its number may be the new file's)
    objects.release(third)


def test_a_file_in_use_is_closed_only_when_its_last_answer_releases_it(store) -> None:
    objects = OpenObjects(store, Clock(), keep_open=2)
    busy = objects.acquire(NAMES[0], 100)
    for name, size in zip(NAMES[1:], range(101, 106)):  # pushes NAMES[0] out of the files kept open
        objects.release(objects.acquire(name, size))
    assert len(objects) == 2
    assert is_open(busy.fd) and os.pread(busy.fd, 200, 0) == b"\0" * 100  # still the same file under its answer
    objects.release(busy)
    assert not is_open(busy.fd)


def test_open_files_stay_bounded(store) -> None:
    before = len(os.listdir("/proc/self/fd"))
    objects = OpenObjects(store, Clock(), keep_open=3)
    for _ in range(3):
        for name, size in zip(NAMES, range(100, 106)):
            objects.release(objects.acquire(name, size))
    assert len(os.listdir("/proc/self/fd")) - before == 3
    objects.close()
    assert len(os.listdir("/proc/self/fd")) == before


def test_an_object_not_as_promised_is_gone_and_its_size_forgotten(store) -> None:
    clock = Clock()
    objects = OpenObjects(store, clock)
    name = NAMES[2]
    assert objects.record(name, clock.now) == (102, pack.encode_header(pack.CHUNK, name, 102))
    store.path(name).unlink()
    with pytest.raises(ChunkMissing):
        objects.acquire(name, 102)
    assert objects.record(name, clock.now) is None  # the client's retry is told MISSING, not promised it again
    with pytest.raises(ChunkMissing):
        objects.acquire(NAMES[3], 99)  # present, but not of the size an answer promised


def test_a_quarter_of_the_file_limit_is_kept_open_at_most(monkeypatch) -> None:
    monkeypatch.setattr(resource, "getrlimit", lambda _which: (1024, 4096))
    assert files_to_keep_open() == 256
    monkeypatch.setattr(resource, "getrlimit", lambda _which: (1 << 20, 1 << 20))
    assert files_to_keep_open() == MOST_OPEN


def test_the_file_limit_is_raised_to_the_hard_limit(monkeypatch) -> None:
    asked = []
    monkeypatch.setattr(resource, "getrlimit", lambda _which: (1024, 4096))
    monkeypatch.setattr(resource, "setrlimit", lambda _which, limits: asked.append(limits))
    assert raise_file_limit() == 4096 and asked == [(4096, 4096)]
