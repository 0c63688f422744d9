"""The app's queue around in-place updates: nothing is written into a running game's files, and a cancelled
update puts back what it had already written where the file lies."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

from client import inplace, staging
from client.app.runner import _remove_staging
from client.installer import Installer, OnDisk
from client.journal import MIST_DIR
from client.plan import Routes, Target, plan
from client.state import State
from shared.chunking import DEFAULT_PARAMS, chunk_bytes
from shared.manifest import FileEntry, Manifest

MB = 1 << 20


def entry(path: str, data: bytes) -> FileEntry:
    return FileEntry(path, len(data), False, hashlib.sha256(data).hexdigest(), chunk_bytes(data, DEFAULT_PARAMS).chunks)


def test_a_running_games_files_are_staged_beside_it_not_written_in_place(tmp_path: Path) -> None:
    rng = random.Random(7)
    old = rng.randbytes(3 * MB)
    new = old[:MB] + rng.randbytes(4000) + old[MB + 4000:]  # a small edit of a large file: worth writing in place
    root = tmp_path / "game"
    root.mkdir()
    (root / "world.pak").write_bytes(old)
    before, after = entry("world.pak", old), entry("world.pak", new)
    target = Manifest("g", "2", DEFAULT_PARAMS, (after,))
    seen = OnDisk({"world.pak": (before.sha256, False)}, ["world.pak"], [], {}, {}, [])
    made = plan(Target.of(target), seen.contents, seen.owned, {})
    state = State(tmp_path)
    try:
        held = Manifest("g", "1", DEFAULT_PARAMS, (before,))
        state.record("g", root, held.canonical_bytes(), held.digest(), "1")
        installed = state.get("g")
        assert installed is not None
        installer = Installer(None, state, None)  # type: ignore[arg-type]
        assert installer._in_place(root, installed, made, seen, Routes({}), set()) == {"world.pak": root / "world.pak"}
        installer.in_use = lambda game: game == "g"
        assert installer._in_place(root, installed, made, seen, Routes({}), set()) == {}
    finally:
        state.close()


def test_a_cancelled_update_puts_back_what_it_wrote_in_place(tmp_path: Path) -> None:
    old = b"old bytes " * 5000
    new = b"NEW" + old[3:40_000]  # three bytes changed, and it shrinks
    root = tmp_path / "game"
    (root / MIST_DIR / staging.STAGING).mkdir(parents=True)
    target = root / "world.pak"
    target.write_bytes(old)
    inplace.save(root, "world.pak", target, [(0, 3)], len(new))
    target.write_bytes(new)  # the download had written part of the new build where the file lies
    _remove_staging(tmp_path / "locks", root, first_install=False)
    assert target.read_bytes() == old
    assert not (root / MIST_DIR / staging.STAGING).exists() and inplace.pending(root) == []
