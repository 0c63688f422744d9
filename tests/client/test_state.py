"""The client's install records: one game's lookup parses only that game's manifest."""

from __future__ import annotations

from pathlib import Path

import pytest

from client.state import State
from shared.chunking import chunk_bytes
from shared.errors import ManifestError
from shared.manifest import FileEntry, Manifest
from shared.chunking import DEFAULT_PARAMS


def manifest(game: str) -> Manifest:
    chunked = chunk_bytes(game.encode() * 100)
    return Manifest(game, "1", DEFAULT_PARAMS, (FileEntry("a.bin", chunked.size, False, chunked.sha256, chunked.chunks),))


def test_get_parses_only_the_game_asked_for(tmp_path: Path) -> None:
    state = State(tmp_path)
    try:
        good = manifest("alpha")
        state.record("alpha", tmp_path / "alpha", good.canonical_bytes(), good.digest(), "1")
        state.record("beta", tmp_path / "beta", b"{damaged", "b" * 64, "1")  # a big game's, or a damaged one
        found = state.get("alpha")
        assert found is not None and found.manifest == good and found.dir == tmp_path / "alpha"
        assert state.get("gamma") is None
        assert state.held_manifest("alpha") == (good.digest(), good.canonical_bytes())
        assert state.held_manifest("gamma") is None
        with pytest.raises(ManifestError):
            state.installs()  # every install: the damaged one too
    finally:
        state.close()
