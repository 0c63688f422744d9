"""Writing into an installed file behind its undo journal: every prefix of the writes, and of the rollback
itself, rolls back to the old bytes; an unsealed journal means the file was never touched."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import pytest

from client import inplace
from client.journal import MIST_DIR
from shared.chunking import ChunkRef
from shared.manifest import FileEntry

KB = 1024


def entry_of(path: str, data: bytes, cut: int = 16 * KB) -> FileEntry:
    refs = tuple(ChunkRef(hashlib.sha256(data[i:i + cut]).hexdigest(), len(data[i:i + cut]))
                 for i in range(0, len(data), cut))
    return FileEntry(path, len(data), False, hashlib.sha256(data).hexdigest(), refs)


@pytest.fixture
def old_and_new() -> tuple[bytes, bytes]:
    rng = random.Random(5)
    old = rng.randbytes(160 * KB)
    new = bytearray(old)
    new[20 * KB:20 * KB + 100] = rng.randbytes(100)
    new[90 * KB:90 * KB + 5000] = rng.randbytes(5000)
    return old, bytes(new[:150 * KB])  # and it shrinks


def test_only_the_chunks_that_differ_are_listed(tmp_path: Path, old_and_new: tuple[bytes, bytes]) -> None:
    old, new = old_and_new
    (tmp_path / "pak").write_bytes(old)
    differing = inplace.differing(tmp_path / "pak", entry_of("pak", new))
    assert [offset for offset, _ in differing] == [16 * KB, 80 * KB]  # the cut last chunk's bytes are all there


def test_every_prefix_of_the_writes_rolls_back_to_the_old_file(tmp_path: Path, old_and_new: tuple[bytes, bytes]) -> None:
    old, new = old_and_new
    entry = entry_of("data/world.pak", new)
    for stop in range(3):
        root = tmp_path / f"stop-{stop}"
        target = root / "data" / "world.pak"
        target.parent.mkdir(parents=True)
        target.write_bytes(old)
        os.chmod(target, 0o640)
        needed = inplace.differing(target, entry)
        saved = inplace.save(root, entry.path, target, [(o, ref.size) for o, ref in needed], entry.size)
        assert saved == 2 * 16 * KB + 10 * KB  # two changed chunks, and the tail the shrink cuts off
        fd = os.open(target, os.O_WRONLY)
        for offset, ref in needed[:stop]:
            os.pwrite(fd, new[offset:offset + ref.size], offset)
        os.close(fd)
        if stop == 2:
            inplace.finish(target, entry)
            assert target.read_bytes() == new
        assert inplace.rollback(root) == ["data/world.pak"]
        assert target.read_bytes() == old and target.stat().st_mode & 0o777 == 0o640
        assert inplace.rollback(root) == [] and not list((root / MIST_DIR / inplace.UNDO).iterdir())


def test_a_rollback_stopped_halfway_is_finished_by_the_next(tmp_path: Path, old_and_new: tuple[bytes, bytes],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = old_and_new
    entry = entry_of("pak", new)
    target = tmp_path / "pak"
    target.write_bytes(old)
    needed = inplace.differing(target, entry)
    inplace.save(tmp_path, "pak", target, [(o, ref.size) for o, ref in needed], entry.size)
    target.write_bytes(new)
    real = inplace.rawfile.pwrite
    calls: list[int] = []

    def power_cut_after_one(fd: int, data: bytes | memoryview, offset: int) -> int:
        calls.append(offset)
        if len(calls) > 1:
            raise OSError("power cut")
        return real(fd, data, offset)

    monkeypatch.setattr(inplace.rawfile, "pwrite", power_cut_after_one)
    with pytest.raises(OSError):
        inplace.rollback(tmp_path)
    monkeypatch.setattr(inplace.rawfile, "pwrite", real)
    assert inplace.rollback(tmp_path) == ["pak"]
    assert target.read_bytes() == old


def test_an_unsealed_journal_is_left_alone_and_a_damaged_one_says_what_to_do(tmp_path: Path) -> None:
    target = tmp_path / "pak"
    target.write_bytes(b"old bytes" * 1000)
    undo = tmp_path / MIST_DIR / inplace.UNDO
    undo.mkdir(parents=True)
    (undo / "cut-short.data").write_bytes(b"half of it")  # killed before the index sealed it: the file never changed
    assert inplace.rollback(tmp_path) == [] and target.read_bytes() == b"old bytes" * 1000
    inplace.save(tmp_path, "pak", target, [(0, 9)], 9000)
    next(undo.glob("*.data")).write_bytes(b"rotten")
    with pytest.raises(inplace.InstallError, match="verify --repair"):
        inplace.rollback(tmp_path)


def test_a_filesystem_without_clones_makes_nothing(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"x" * 5000)
    assert inplace.clone(tmp_path / "a", tmp_path / "b") is False  # this machine's ext4 (btrfs: tests/e2e/test_in_place.py)
    assert not (tmp_path / "b").exists()
