"""Executable bits where the OS keeps them, and the manifest's word where it does not (Windows)."""

from __future__ import annotations

import os
import types
from pathlib import Path

from client import filemode


def test_posix_reads_the_bit_and_windows_takes_the_manifests(tmp_path: Path) -> None:
    game = tmp_path / "game.sh"
    game.write_bytes(b"#!/bin/sh\n")
    filemode.set_mode(game, True)
    assert filemode.executable(game, expected=False) is True
    filemode.set_mode(game, False)
    assert filemode.executable(game, expected=True) is False
    assert filemode.executable(game, expected=True, keeps_bits=False) is True
    assert filemode.executable(game, expected=False, keeps_bits=False) is False


def test_space_on_disk_from_blocks_or_from_the_size_without_them(tmp_path: Path) -> None:
    sparse = tmp_path / "sparse"
    with open(sparse, "wb") as f:
        f.truncate(64 * 1024 * 1024)
    assert filemode.allocated(sparse.stat()) < 64 * 1024 * 1024
    windows_stat = types.SimpleNamespace(st_size=123)  # Windows' stat_result has no st_blocks
    assert filemode.allocated(windows_stat) == 123  # type: ignore[arg-type]
    assert os.stat(sparse).st_size == 64 * 1024 * 1024
