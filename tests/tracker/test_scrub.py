"""The store scrub on a real directory store: damaged objects are set aside, intact ones and fresh temp files stay."""

from __future__ import annotations

import hashlib
import os
import time

from shared import compression
from shared.chunkstore import DirectoryChunkStore
from tracker.jobs.scrub import TEMPORARY_GRACE, scrub


def put(store: DirectoryChunkStore, data: bytes) -> str:
    name = hashlib.sha256(data).hexdigest()
    store.put(name, compression.compress(data))
    return name


def test_scrub_quarantines_damaged_objects_and_keeps_intact_ones(tmp_path) -> None:
    store = DirectoryChunkStore(tmp_path / "store", durable=False)
    good = put(store, b"good chunk" * 100)
    rotten = put(store, b"rotten chunk" * 100)
    garbage = put(store, b"garbage chunk" * 100)
    store.path(rotten).write_bytes(compression.compress(b"other bytes" * 100))  # valid zstd, wrong content
    store.path(garbage).write_bytes(b"\x00not zstd at all")
    report = scrub(store)
    assert report.checked == 3
    assert sorted(report.corrupt) == sorted([rotten, garbage])
    assert store.has(good) and not store.has(rotten) and not store.has(garbage)
    assert store.missing([good, rotten, garbage]) == [rotten, garbage]  # so the next push uploads them again
    assert (tmp_path / "store" / "quarantine" / rotten).exists()
    assert scrub(store).checked == 1  # quarantined objects are not checked again


def test_scrub_sweeps_only_old_temporary_files(tmp_path) -> None:
    store = DirectoryChunkStore(tmp_path / "store", durable=False)
    name = put(store, b"x" * 1000)
    folder = store.path(name).parent
    old, fresh = folder / ".tmp-old", folder / ".tmp-fresh"
    old.write_bytes(b"half a chunk")
    fresh.write_bytes(b"a chunk being written")
    now = time.time()
    os.utime(old, (now - TEMPORARY_GRACE - 10, now - TEMPORARY_GRACE - 10))
    report = scrub(store, now=now)
    assert report.temporary_removed == 1
    assert not old.exists() and fresh.exists() and store.has(name)
