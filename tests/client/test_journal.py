"""The swap journal, stopped after every step it takes and applied again: each prefix ends in the same tree."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from client.journal import MIST_DIR, Journal, apply


class Crash(Exception):
    """Where the test stops the swap, as a power cut would."""


def folder(root: Path) -> Journal:
    """An old build with staged new files: every kind of step a swap takes, twice where it can."""
    files = {"game.exe": b"old exe", "data/level1.pak": b"old level", "data/gone.pak": b"dropped",
             "old/folder/only.txt": b"dropped with its folder", "readme.txt": b"same", "tools/run.sh": b"#!/bin/sh"}
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    staging = root / MIST_DIR / "staging"
    staging.mkdir(parents=True)
    staged = {"s1": b"new exe", "s2": b"new level", "s3": b"a new file in a new folder"}
    for name, data in staged.items():
        (staging / name).write_bytes(data)
    return Journal("g", "2", "d", [("staging/s1", "game.exe"), ("staging/s2", "data/level1.pak"),
                                   ("staging/s3", "new/deep/file.bin")],
                   ["data/gone.pak", "old/folder/only.txt"], [("tools/run.sh", True), ("readme.txt", False)],
                   [("latest.exe", "game.exe", False), ("levels", "data", True)])


def snapshot(root: Path) -> dict[str, object]:
    out: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != MIST_DIR]
        for name in filenames + [d for d in dirnames if Path(dirpath, d).is_symlink()]:
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            out[rel] = ("link", os.readlink(path)) if path.is_symlink() else (path.read_bytes(), path.stat().st_mode & 0o777)
        out.update({Path(dirpath, d).relative_to(root).as_posix() + "/": "folder" for d in dirnames
                    if not Path(dirpath, d).is_symlink()})
    return out


def test_every_prefix_of_the_swap_applied_again_ends_in_the_same_tree(tmp_path: Path) -> None:
    whole = tmp_path / "whole"
    steps: list[str] = []
    apply(whole, folder(whole), after=steps.append)
    expected = snapshot(whole)
    assert steps.count("move") == 3 and steps.count("delete") == 2 and steps.count("link") == 2
    assert expected["game.exe"] == (b"new exe", 0o644) and expected["tools/run.sh"][1] == 0o755  # type: ignore[index]
    assert "old/" not in expected and "data/gone.pak" not in expected  # emptied folders go with their files
    for stop in range(len(steps)):
        root = tmp_path / f"stopped-after-{stop}"
        record = folder(root)
        taken = []

        def crash(step: str) -> None:
            taken.append(step)
            if len(taken) > stop:
                raise Crash(step)

        with pytest.raises(Crash):
            apply(root, record, after=crash)
        apply(root, record)  # the next run finds the journal and applies it again
        assert snapshot(root) == expected, f"stopped after {stop} steps ({taken[-1]})"
        apply(root, record)  # and a run after that changes nothing
        assert snapshot(root) == expected
