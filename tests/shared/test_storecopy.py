"""Copying objects between directory stores: each checked against its name, what the target has is left alone."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import pytest

from shared import compression
from shared.chunkstore import DirectoryChunkStore
from shared.errors import ChunkCorrupt
from shared.storecopy import IN_FLIGHT, copy_all, verified


def put(store: DirectoryChunkStore, content: bytes) -> str:
    name = hashlib.sha256(content).hexdigest()
    store.put(name, compression.compress(content))
    return name


@pytest.fixture
def stores(tmp_path: Path) -> tuple[DirectoryChunkStore, DirectoryChunkStore]:
    return DirectoryChunkStore(tmp_path / "a", durable=False), DirectoryChunkStore(tmp_path / "b", durable=False)


def test_the_content_hash_reads_a_frame_in_pieces_and_nothing_else() -> None:
    content = random.Random(1).randbytes(3_000_000)
    stored = compression.compress(content, 1)
    for piece in (7, 4096, 1 << 20):
        assert compression.content_sha256(stored, piece) == hashlib.sha256(content).hexdigest()
    for bad, why in ((stored[:-1], "cut short"), (stored + b"\0", "bytes after"), (b"", "cut short"),
                     (b"not zstd at all", "does not decompress")):
        with pytest.raises(ChunkCorrupt, match=why):
            compression.content_sha256(bad, 4096)


def test_objects_are_copied_verified_and_a_second_copy_moves_nothing(stores) -> None:
    source, target = stores
    names = [put(source, f"object {i}".encode() * 100) for i in range(20)]
    first = copy_all(source, target, names)
    assert (first.copied, first.kept) == (20, 0) and first.bytes_copied == first.bytes_total > 0
    assert all(verified(target, n) == source.get(n) for n in names)
    again = copy_all(source, target, names)
    assert (again.copied, again.kept, again.bytes_copied) == (0, 20, 0) and again.bytes_total == first.bytes_total


def test_missing_and_damaged_objects_are_reported_not_copied(stores) -> None:
    source, target = stores
    good, damaged, renamed = (put(source, c) for c in (b"good" * 50, b"damaged" * 50, b"renamed" * 50))
    data = bytearray(source.get(damaged))
    data[-5] ^= 0xFF
    source.path(damaged).write_bytes(bytes(data))
    wrong = hashlib.sha256(b"other").hexdigest()  # a valid object filed under another object's name
    source.path(wrong).parent.mkdir(parents=True, exist_ok=True)
    os.replace(source.path(renamed), source.path(wrong))
    absent = hashlib.sha256(b"never stored").hexdigest()
    report = copy_all(source, target, [good, damaged, wrong, absent])
    assert report.copied == 1 and report.missing == [absent]
    assert set(report.corrupt) == {damaged, wrong} and "SHA-256 is" in report.corrupt[wrong]
    assert target.has(good) and not target.has(damaged) and not target.has(wrong)


def test_a_damaged_copy_in_the_target_is_replaced_when_rechecked(stores) -> None:
    source, target = stores
    name = put(source, b"content" * 500)
    copy_all(source, target, [name])
    data = bytearray(target.get(name))
    data[len(data) // 2] ^= 0x01
    target.path(name).write_bytes(bytes(data))  # same size: a plain second copy trusts the name
    assert copy_all(source, target, [name]).kept == 1
    assert copy_all(source, target, [name], recheck=True).copied == 1
    assert verified(target, name) == source.get(name)


def test_an_interruption_stops_the_copy(stores) -> None:
    source, target = stores
    names = [put(source, f"object {i}".encode() * 100) for i in range(200)]

    def stop(name: str) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        copy_all(source, target, names, on_object=stop)
    assert 1 <= len([n for n in names if target.has(n)]) <= 1 + IN_FLIGHT
