"""The chunk store contract every implementation passes, then what is particular to DirectoryChunkStore.

The contract runs against the directory store, the in-memory store and the S3 store on a real S3 protocol
server on loopback (tests/s3.py). To run it against a new implementation, add one factory to IMPLEMENTATIONS.
"""

import errno
import hashlib
import math
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from shared import chunkstore
from shared.chunkstore import ChunkStore, DirectoryChunkStore, StoreSettings, open_store
from shared.errors import ChunkMissing, MistError, StoreError
from shared.memory_store import MemoryChunkStore
from shared.s3_store import S3ChunkStore
from tests.s3 import S3Server
from tests.waiting import wait_until

A = hashlib.sha256(b"a").hexdigest()
B = hashlib.sha256(b"b").hexdigest()
C = hashlib.sha256(b"c").hexdigest()


def s3_store(request: pytest.FixtureRequest, tmp_path: Path) -> ChunkStore:
    server: S3Server = request.getfixturevalue("s3_server")
    return S3ChunkStore(server.bucket(), "store/", server.endpoint)


IMPLEMENTATIONS: dict[str, Callable[[pytest.FixtureRequest, Path], ChunkStore]] = {
    "directory": lambda request, tmp_path: DirectoryChunkStore(tmp_path / "store"),
    "memory": lambda request, tmp_path: MemoryChunkStore(),
    "s3": s3_store,
}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def store(request, tmp_path) -> ChunkStore:
    return IMPLEMENTATIONS[request.param](request, tmp_path)


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


def test_listing_names_every_object_with_its_size_and_a_recent_use(store):
    before = math.floor(time.time()) - 1  # S3 keeps whole seconds
    store.put(A, b"12345")
    store.put(B, b"")
    listed = {s.name: s for s in store.listing()}
    assert sorted(listed) == sorted([A, B]) and listed[A].size == 5 and listed[B].size == 0
    assert all(before <= s.used <= time.time() + 1 for s in listed.values())
    assert sorted(chunkstore.names(store)) == sorted([A, B])


def test_remove_takes_an_object_away_and_an_absent_one_is_no_error(store):
    store.put(A, b"x")
    store.remove(A)
    store.remove(B)
    assert not store.has(A) and list(store.listing()) == []


def test_quarantine_leaves_the_object_missing_and_out_of_the_listing(store):
    store.put(A, b"damaged")
    store.put(B, b"fine")
    store.quarantine(A)
    store.quarantine(C)  # absent: nothing to do
    assert store.missing([A, B]) == [A]
    assert [s.name for s in store.listing()] == [B]
    assert list(store.quarantined()) == [A]  # a commit checks these though its previous build had them
    store.put(A, b"uploaded again")
    assert store.get(A) == b"uploaded again"


def test_an_empty_quarantine_names_nothing(store):
    store.put(A, b"x")
    assert list(store.quarantined()) == []


def past_a_whole_second() -> float:
    """The next whole second, once the clock has passed it. S3 keeps times in whole seconds, and a file's
    mtime comes from the kernel's coarse clock (a few ms behind time.time()): what is written after this
    returns is at or after the cutoff it gives, what was written before is older."""
    cutoff = float(math.ceil(time.time() + 0.001))
    wait_until(lambda: time.time() >= cutoff + 0.05, "the clock to pass a whole second", timeout=5)
    return cutoff


def test_remove_if_unused_keeps_what_was_used_at_or_after_the_cutoff(store):
    store.put(A, b"old")
    cutoff = past_a_whole_second()
    store.put(B, b"young")
    assert store.remove_if_unused(B, cutoff) is None and store.has(B)
    assert store.remove_if_unused(A, cutoff) == 3 and not store.has(A)
    assert store.remove_if_unused(A, cutoff) is None  # gone already
    store.put(A, b"old")
    later = past_a_whole_second()
    assert store.touch([A]) == []  # used again: its grace period starts again
    assert store.remove_if_unused(A, later) is None and store.has(A)


def test_a_touch_racing_a_collection_never_reports_present_an_object_that_goes(store):
    """The garbage collector's promise to a push: what `touch` reported present is still there afterwards."""
    names = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(24)]
    for name in names:
        store.put(name, b"payload")
    cutoff = past_a_whole_second()  # every object is older; every touch from here on is not
    reported: dict[str, bool] = {}
    removed: dict[str, int | None] = {}

    def push() -> None:
        for name in names:
            reported[name] = store.touch([name]) == []

    def collect() -> None:
        for name in reversed(names):
            removed[name] = store.remove_if_unused(name, cutoff)

    threads = [threading.Thread(target=push), threading.Thread(target=collect)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for name in names:
        if reported[name]:
            assert store.has(name), f"{name[:12]} was reported present to the push, then removed"
        if removed[name] is not None:
            assert not store.has(name) or reported[name] is False, f"{name[:12]} removed yet still there"


def test_probe_passes_on_a_working_store_and_leaves_nothing(store):
    store.probe()
    assert list(store.listing()) == []
    assert store.sweep_temporary(time.time() + 3600) >= 0


def test_capabilities_are_declared_not_guessed(store):
    """The seeder asks `files` for sendfile and open files, `links` for signed URLs: each a store has or not."""
    if store.files is not None:
        store.put(A, b"on disk")
        assert Path(store.files.file(A)).read_bytes() == b"on disk" and store.files.path(A).is_file()
    if store.links is not None:
        assert A in store.links.url(A, 60)


# Opening a store by URL


def test_open_store_makes_the_store_a_url_names(tmp_path):
    assert isinstance(open_store("", tmp_path / "default"), DirectoryChunkStore)
    assert open_store(str(tmp_path / "elsewhere"), tmp_path).where == str(tmp_path / "elsewhere")
    assert open_store(f"file://{tmp_path}/x", tmp_path).where == f"{tmp_path}/x"
    s3 = StoreSettings.from_env({"MIST_STORE_URL": "s3://bucket-1/some/prefix/", "MIST_S3_ENDPOINT_URL": "http://127.0.0.1:9"}).open(tmp_path)
    assert isinstance(s3, S3ChunkStore) and s3.where == "s3://bucket-1/some/prefix/"


@pytest.mark.parametrize("url", ["s3://", "s3://UPPER/x", "s3://a", "gs://bucket/x", "http://host/x"])
def test_a_wrong_store_url_says_what_it_takes(tmp_path, url):
    with pytest.raises(StoreError, match="MIST_STORE_URL must be"):
        open_store(url, tmp_path)


def test_an_s3_store_that_does_not_answer_is_a_store_error_naming_what_to_check(tmp_path):
    store = S3ChunkStore("bucket-1", "", "http://127.0.0.1:9")  # nothing listens on port 9
    with pytest.raises(StoreError, match="MIST_S3_ENDPOINT_URL"):
        store.get(A)


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


# S3ChunkStore


def test_s3_a_touch_between_the_collectors_look_and_its_removal_reports_the_object_absent(s3_server):
    """The interleaving the tombstone is for, made to happen: the collector has seen an old time and is about
    to remove the object when a push marks it used. The push must hear "absent" (and upload it again)."""
    store = S3ChunkStore(s3_server.bucket(), "", s3_server.endpoint)
    store.put(A, b"old")
    cutoff = past_a_whole_second()
    remove = store._s3.delete_object
    told: list[list[str]] = []

    def delete_object(**kwargs):  # the collector's removal of A: the push's touch runs just before it
        if kwargs["Key"] == store.key(A) and not told:
            told.append(store.touch([A]))
        return remove(**kwargs)

    store._s3.delete_object = delete_object
    assert store.remove_if_unused(A, cutoff) == 3
    assert told == [[A]] and not store.has(A)
    assert store.touch([A]) == [A]  # and, the collector done, a later touch agrees
