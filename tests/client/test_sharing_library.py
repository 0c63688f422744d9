"""The daemon's sharing library: each install as a compact index, kept in the client's database and read back
on later starts, chunks read from the installed files and checked."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest

from client.sharing import Library
from client.state import State
from shared.chunking import DEFAULT_PARAMS, ChunkRef
from shared.manifest import FileEntry, Manifest

pytestmark = pytest.mark.same_on_every_backend  # the client's own SQLite, no tracker


def _install(state: State, folder: Path, game: str, contents: dict[str, bytes]) -> Manifest:
    files = []
    for path, data in sorted(contents.items()):
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(data)
        pieces = [data[i:i + 1000] for i in range(0, len(data), 1000)]
        files.append(FileEntry(path, len(data), False, hashlib.sha256(data).hexdigest(),
                               tuple(ChunkRef(hashlib.sha256(p).hexdigest(), len(p)) for p in pieces)))
    manifest = Manifest(game, "1", DEFAULT_PARAMS, tuple(files))
    state.record(game, folder, manifest.canonical_bytes(), manifest.digest(), "1")
    return manifest


def test_chunks_are_read_from_the_installed_files_and_the_index_is_kept_for_the_next_start(tmp_path) -> None:
    state = State(tmp_path)
    data = random.Random(1).randbytes(3500)
    manifest = _install(state, tmp_path / "hollow", "hollow", {"bin/game": data, "empty": b""})
    library = Library(state)
    library.refresh()
    last = manifest.files[0].chunks[-1]
    assert library.read(last.sha256) == data[3000:] and library.holds(last.sha256)
    assert library.read("0" * 64) is None and not library.holds("0" * 64)
    assert set(library.chunks_of(manifest.digest())) == {ref.sha256 for ref in manifest.files[0].chunks}
    assert state.build_index(manifest.digest()) is not None
    # The next start reads the kept index: it no longer needs the manifest (spoiled here to show it is not read).
    state._db.execute("UPDATE installs SET manifest = ? WHERE game = 'hollow'", (b"{}",))
    later = Library(state)
    later.refresh()
    assert later.read(last.sha256) == data[3000:]


def test_a_damaged_kept_index_is_made_again_and_a_modded_file_s_chunk_is_found_in_another_install(tmp_path) -> None:
    state = State(tmp_path)
    shared_bytes = random.Random(2).randbytes(2000)
    first = _install(state, tmp_path / "a", "alpha", {"x.bin": shared_bytes})
    _install(state, tmp_path / "b", "beta", {"y.bin": shared_bytes})
    state.keep_build_index(first.digest(), b"mist-build-index-1\ndamaged")
    library = Library(state)
    library.refresh()
    chunk = first.files[0].chunks[1].sha256
    assert library.read(chunk) == shared_bytes[1000:]
    assert state.build_index(first.digest()) != b"mist-build-index-1\ndamaged"
    (tmp_path / "a" / "x.bin").write_bytes(b"modded" * 400)  # alpha's file no longer holds it: beta's does
    assert library.read(chunk) == shared_bytes[1000:]
    (tmp_path / "b" / "y.bin").write_bytes(b"modded" * 400)
    assert library.read(chunk) is None
    state.forget("beta")
    state.keep_build_index(first.digest(), library.builds[first.digest()].to_bytes())
    assert {p.name.split(".")[0] for p in (tmp_path / "builds").iterdir()} == {first.digest()}  # beta's are dropped
