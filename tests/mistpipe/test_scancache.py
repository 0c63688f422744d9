"""The push cache: a second scan reads only the files whose size, time or identity changed, and gives the
same manifest as a full read."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from mistpipe.scan import scan, scan_cached
from mistpipe.scancache import ScanCache, pack_refs, unpack_refs
from shared.chunking import ChunkingParams, chunk_bytes

OLD = time.time() - 3600  # build files are older than the racy window in real life; tests make them so


def age(root: Path, when: float = OLD) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, (when, when))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    rng = random.Random(7)
    root = tmp_path / "build"
    (root / "data").mkdir(parents=True)
    (root / "data" / "pack.bin").write_bytes(rng.randbytes(700_000))
    (root / "readme.txt").write_bytes(b"hello\n" * 100)
    (root / "empty").write_bytes(b"")
    age(root)
    return root


@pytest.fixture
def cache(tmp_path: Path):
    opened = ScanCache(tmp_path / "cache.db")
    yield opened
    opened.close()


def test_a_second_scan_reads_nothing_and_gives_the_same_manifest(tree: Path, cache: ScanCache) -> None:
    first = scan_cached(tree, "g", "1", cache)
    assert first.files_read == 3 and first.bytes_read == 700_000 + 600
    second = scan_cached(tree, "g", "1", cache)
    assert (second.files_read, second.bytes_read) == (0, 0)
    assert second.manifest.canonical_bytes() == first.manifest.canonical_bytes() == scan(tree, "g", "1").canonical_bytes()


def test_a_changed_file_is_read_again_and_only_it(tree: Path, cache: ScanCache) -> None:
    scan_cached(tree, "g", "1", cache)
    pack = tree / "data" / "pack.bin"
    data = bytearray(pack.read_bytes())
    data[300_000:300_010] = b"0123456789"  # same size: the time says it changed
    pack.write_bytes(bytes(data))
    os.utime(pack, (OLD + 5, OLD + 5))
    second = scan_cached(tree, "g", "2", cache)
    assert (second.files_read, second.bytes_read) == (1, 700_000)
    assert second.manifest.canonical_bytes() == scan(tree, "g", "2").canonical_bytes()


def test_a_file_replaced_with_the_same_size_and_time_is_read_again(tree: Path, cache: ScanCache) -> None:
    scan_cached(tree, "g", "1", cache)
    readme = tree / "readme.txt"
    replacement = tree / "readme.new"
    replacement.write_bytes(b"HELLO\n" * 100)
    os.utime(replacement, (OLD, OLD))
    os.replace(replacement, readme)  # another inode, same size and time: the file id tells
    again = scan_cached(tree, "g", "2", cache)
    assert again.files_read == 1
    assert next(f for f in again.manifest.files if f.path == "readme.txt").sha256 == chunk_bytes(b"HELLO\n" * 100).sha256


def test_rescan_reads_every_file_and_refreshes_the_cache(tree: Path, cache: ScanCache) -> None:
    scan_cached(tree, "g", "1", cache)
    pack = tree / "data" / "pack.bin"
    data = bytearray(pack.read_bytes())
    data[10] ^= 0xFF
    pack.write_bytes(bytes(data))
    os.utime(pack, (OLD, OLD))  # a tool that set the time back: the signature cannot see it
    assert scan_cached(tree, "g", "2", cache).files_read == 0
    forced = scan_cached(tree, "g", "2", cache, rescan=True)
    assert forced.files_read == 3
    assert forced.manifest.canonical_bytes() == scan(tree, "g", "2").canonical_bytes()
    assert scan_cached(tree, "g", "2", cache).manifest.canonical_bytes() == forced.manifest.canonical_bytes()


def test_files_written_just_now_are_not_remembered(tree: Path, cache: ScanCache) -> None:
    (tree / "fresh.txt").write_bytes(b"new")  # its time is now: a second write in the same tick would not show
    scan_cached(tree, "g", "1", cache)
    assert scan_cached(tree, "g", "1", cache).files_read == 1


def test_removed_files_are_forgotten_and_other_params_read_again(tree: Path, cache: ScanCache) -> None:
    scan_cached(tree, "g", "1", cache)
    (tree / "readme.txt").unlink()
    assert "readme.txt" not in {f.path for f in scan_cached(tree, "g", "2", cache).manifest.files}
    assert "readme.txt" not in cache.known(tree, ChunkingParams())
    other = ChunkingParams(min_size=8192, avg_size=32768, max_size=131072)
    assert scan_cached(tree, "g", "2", cache, params=other).files_read == 2


def test_the_cache_lives_on_between_processes(tree: Path, tmp_path: Path) -> None:
    first = ScanCache(tmp_path / "c.db")
    scan_cached(tree, "g", "1", first)
    first.close()
    reopened = ScanCache(tmp_path / "c.db")
    try:
        assert scan_cached(tree, "g", "1", reopened).files_read == 0
    finally:
        reopened.close()


def test_chunk_lists_pack_and_unpack() -> None:
    refs = chunk_bytes(random.Random(1).randbytes(300_000)).chunks
    assert unpack_refs(pack_refs(refs)) == refs and len(pack_refs(refs)) == 36 * len(refs)
