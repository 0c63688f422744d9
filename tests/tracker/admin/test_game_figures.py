"""A game's figures on its page: what each build added to the store, the patches into it, the next version."""

from __future__ import annotations

import pytest

from shared import compression
from shared.chunkstore import DirectoryChunkStore
from shared.chunking import DEFAULT_PARAMS, ChunkRef
from shared.manifest import FileEntry, Manifest
from tracker.admin.formatting import ago, human_bytes
from tracker.admin.game_figures import figures, next_version
from tracker.db.admin_views import StoredBuild
from tracker.planner import PatchOption

pytestmark = pytest.mark.same_on_every_backend


def _store(tmp_path, blobs: dict[str, bytes]) -> DirectoryChunkStore:
    store = DirectoryChunkStore(tmp_path / "store")
    for name, data in blobs.items():
        store.put(name, compression.compress(data))
    return store


def _build(version: str, files: list[tuple[str, str, list[str]]]) -> StoredBuild:
    entries = tuple(FileEntry(path, 10 * len(chunks), False, sha, tuple(ChunkRef(c, 10) for c in chunks))
                    for path, sha, chunks in files)
    manifest = Manifest("game", version, DEFAULT_PARAMS, entries)
    return StoredBuild(version, manifest.digest(), manifest.canonical_bytes())


def test_each_build_counts_only_the_chunks_no_earlier_build_had(tmp_path) -> None:
    a, b, c = "a" * 64, "b" * 64, "c" * 64
    store = _store(tmp_path, {a: b"x" * 1000, b: b"y" * 1000, c: bytes(range(256)) * 4})
    old = _build("1.0", [("game.bin", "1" * 64, [a, b])])
    new = _build("1.1", [("game.bin", "2" * 64, [a, c])])
    patch = PatchOption("1" * 64, "2" * 64, "d" * 64, 50, 40, "hdiff")
    first, second = figures(store, [old, new], [patch])
    assert first.new_bytes == first.stored_bytes and first.reused_fraction == 0
    sizes = store.sizes([a, c])
    assert second.new_bytes == sizes[c] and second.stored_bytes == sizes[a] + sizes[c]
    assert [(p.sources, p.files, p.bytes) for p in second.patches] == [("1.0", 1, 40)]
    assert first.patches == []


@pytest.mark.parametrize("latest, wanted", [(None, "1.0"), ("1.0", "1.1"), ("1.9", "1.10"), ("2.0-beta3", "2.0-beta4"),
                                            ("v7", "v8"), ("gold", "gold.1")])
def test_the_push_command_suggests_the_next_version(latest, wanted) -> None:
    assert next_version(latest) == wanted


def test_figures_read_as_people_write_them() -> None:
    assert [human_bytes(n) for n in (0, 999, 1500, 2_500_000, 3 * 10**12)] == ["0 B", "999 B", "1.5 KB", "2.5 MB", "3.0 TB"]
    assert [ago(t, 100_000) for t in (0, 99_990, 99_000, 90_000, 100_000 - 86400 * 3)] == [
        "never", "just now", "16 min ago", "2 h ago", "3 days ago"]
