"""Mist removes a path only while it holds what Mist put there; a friend's change makes it theirs."""

from __future__ import annotations

import os
from pathlib import Path

from client.ownership import file_stats, split_ours
from shared.build_index import BuildIndex
from shared.chunking import DEFAULT_PARAMS, chunk_bytes
from shared.links import LinkEntry
from shared.manifest import FileEntry, Manifest


def installed(root: Path) -> Manifest:
    files = []
    for path, data in (("a.pak", b"A" * 5000), ("b.cfg", b"setting=1"), ("c.txt", b"readme")):
        (root / path).write_bytes(data)
        chunked = chunk_bytes(data)
        files.append(FileEntry(path, len(data), False, chunked.sha256, chunked.chunks))
    (root / "link").symlink_to("a.pak")
    return Manifest("g", "1", DEFAULT_PARAMS, tuple(files), (LinkEntry("link", "a.pak"),))


def test_files_changed_or_replaced_since_mist_left_them_are_the_friends(tmp_path: Path) -> None:
    manifest = installed(tmp_path)
    stats = file_stats(tmp_path, [f.path for f in manifest.files])
    (tmp_path / "b.cfg").write_bytes(b"setting=2")  # same size, new time: the friend edited it
    os.utime(tmp_path / "b.cfg", ns=(stats["b.cfg"][1] + 10**9, stats["b.cfg"][1] + 10**9))
    (tmp_path / "c.txt").unlink()
    (tmp_path / "link").unlink()
    (tmp_path / "link").symlink_to("c.txt")  # a link of the friend's own
    ours, theirs = split_ours(tmp_path, ["a.pak", "b.cfg", "c.txt", "link"], BuildIndex.of(manifest), stats)
    assert ours == ["a.pak", "c.txt"] and theirs == ["b.cfg", "link"]  # c.txt is gone: nothing to lose


def test_without_a_record_the_manifest_size_decides(tmp_path: Path) -> None:
    manifest = installed(tmp_path)
    (tmp_path / "a.pak").write_bytes(b"a mod, another size")
    ours, theirs = split_ours(tmp_path, ["a.pak", "b.cfg"], BuildIndex.of(manifest), None)
    assert ours == ["b.cfg"] and theirs == ["a.pak"]
