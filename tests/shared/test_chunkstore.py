"""The chunk store contract every implementation passes, then what is particular to DirectoryChunkStore.

To run the contract against a new implementation, add one factory to IMPLEMENTATIONS.
"""

import errno
import hashlib
import os
import re
import time

import pytest

from shared import chunkstore
from shared.chunkstore import ChunkStore, DirectoryChunkStore
from shared.errors import ChunkMissing, MistError, StoreError

A = hashlib.sha256(b"a").hexdigest()
B = hashlib.sha256(b"b").hexdigest()
C = hashlib.sha256(b"c").hexdigest()

IMPLEMENTATIONS = {
    "directory": lambda tmp_path: DirectoryChunkStore(tmp_path / "store"),
}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def store(request, tmp_path) -> ChunkStore:
    return IMPLEMENTATIONS[request.param](tmp_path)


# The contract


def test_put_then_get_returns_the_bytes(store):
    store.put(A, b"compressed a")
    assert store.get(A) == b"compressed a"


def test_has_tells_present_from_absent(store):
    store.put(A, b"x")
    assert store.has(A)
    assert not store.has(B)


def test_missing_lists_absent_hashes_in_the_order_asked(store):
    store.put(B, b"x")
    assert store.missing([C, B, A]) == [C, A]
    assert store.missing([]) == []


def test_sizes_gives_stored_sizes_and_leaves_absent_out(store):
    store.put(A, b"12345")
    store.put(B, b"")
    assert store.sizes([A, B, C]) == {A: 5, B: 0}


def test_touch_lists_absent_hashes_in_the_order_asked_like_missing(store):
    store.put(B, b"x")
    assert store.touch([C, B, A]) == [C, A]
    assert store.touch([]) == []
    assert store.get(B) == b"x"  # marking an object used leaves its bytes alone


def test_get_of_an_absent_chunk_raises_chunk_missing(store):
    with pytest.raises(ChunkMissing) as info:
        store.get(A)
    assert info.value.chunk_id == A


@pytest.mark.parametrize(
    "name", ["", "abc", A.upper(), A[:-1], A + "0", "../" + A[3:], "g" * 64, A + "\n"], ids=repr
)
def test_get_of_a_non_hex_name_raises_chunk_missing(store, name):
    with pytest.raises(ChunkMissing):
        store.get(name)


@pytest.mark.parametrize("name", ["abc", A.upper(), "../../" + A[6:], A + "\n"], ids=repr)
def test_a_non_hex_name_is_refused_by_put(store, name):
    with pytest.raises(MistError):
        store.put(name, b"x")


def test_put_is_idempotent(store):
    store.put(A, b"same")
    store.put(A, b"same")
    assert store.get(A) == b"same"
    assert store.missing([A]) == []


def test_large_objects_survive_intact(store):
    data = os.urandom(3 * 1024 * 1024 + 7)
    store.put(A, data)
    assert store.get(A) == data
    assert store.sizes([A]) == {A: len(data)}


# DirectoryChunkStore


def files_under(root) -> list[str]:
    return sorted(p.name for p in root.rglob("*") if p.is_file())


def test_directory_store_lays_objects_out_by_prefix(tmp_path):
    store = DirectoryChunkStore(tmp_path)
    store.put(A, b"x")
    assert (tmp_path / A[:2] / A[2:4] / A).read_bytes() == b"x"


@pytest.mark.parametrize("durable", [True, False])
def test_directory_store_leaves_no_temp_files_after_put(tmp_path, durable):
    store = DirectoryChunkStore(tmp_path, durable=durable)
    for h in (A, B, C, A):
        store.put(h, b"payload")
    assert files_under(tmp_path) == sorted([A, B, C])
    assert all(re.fullmatch(r"[0-9a-f]{64}", name) for name in files_under(tmp_path))


class FailingOS:
    """The os module, except that every write fails as a disk would."""

    def __init__(self, code: int) -> None:
        self.code = code

    def __getattr__(self, name: str):
        return getattr(os, name)

    def write(self, fd: int, data) -> int:
        raise OSError(self.code, os.strerror(self.code))


def test_disk_full_is_a_store_error_and_leaves_nothing_behind(tmp_path, monkeypatch):
    store = DirectoryChunkStore(tmp_path)
    monkeypatch.setattr(chunkstore, "os", FailingOS(errno.ENOSPC))
    with pytest.raises(StoreError, match="out of disk space"):
        store.put(A, b"payload")
    monkeypatch.undo()
    assert files_under(tmp_path) == []
    assert not store.has(A)


def test_other_write_failures_are_store_errors(tmp_path, monkeypatch):
    store = DirectoryChunkStore(tmp_path)
    monkeypatch.setattr(chunkstore, "os", FailingOS(errno.EIO))
    with pytest.raises(StoreError, match="could not write"):
        store.put(A, b"payload")
    monkeypatch.undo()
    assert files_under(tmp_path) == []


def test_unreadable_object_is_a_store_error(tmp_path):
    store = DirectoryChunkStore(tmp_path)
    (tmp_path / A[:2] / A[2:4] / A).mkdir(parents=True)  # something that is there but cannot be read as a file
    with pytest.raises(StoreError, match="could not read"):
        store.get(A)


def test_touch_makes_an_old_object_young_again(tmp_path):
    store = DirectoryChunkStore(tmp_path)
    store.put(A, b"x")
    os.utime(store.path(A), (1_000_000, 1_000_000))
    before = time.time()
    assert store.touch([A]) == []
    assert store.path(A).stat().st_mtime >= before - 1  # the garbage collector's grace period starts again


def test_repr_shows_the_root(tmp_path):
    assert repr(DirectoryChunkStore(tmp_path)) == f"DirectoryChunkStore(root={str(tmp_path)!r})"


def test_read_file_rebuilds_a_file_and_refuses_a_damaged_one(tmp_path) -> None:
    import random

    from shared import compression
    from shared.chunkstore import read_file
    from shared.errors import ChunkCorrupt
    from tests.stored import store_file

    store = DirectoryChunkStore(tmp_path / "store", durable=False)
    data = random.Random(4).randbytes(300_000)
    entry = store_file(store, "game.bin", data)
    assert read_file(store, entry) == data
    first = entry.chunks[0]
    same_size = bytes(first.size)  # decompresses to the right size, but is not the chunk
    store.path(first.sha256).write_bytes(compression.compress(same_size))
    with pytest.raises(ChunkCorrupt, match="game.bin"):
        read_file(store, entry)
