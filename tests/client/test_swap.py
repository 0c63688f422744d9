"""The journal's replace and remove through Windows' refusals, over real files with Windows' rules
(tests/platforms/windows_files.py) and a clock that moves only when the code waits."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from client import swap
from tests.clock import Clock
from tests.platforms.windows_files import WindowsFiles


def patient(files: WindowsFiles, clock: Clock) -> swap.Patient:
    return swap.Patient(clock=clock, wait=clock.wait, rename=files.rename, unlink=files.unlink)


@pytest.fixture
def staged(tmp_path: Path) -> tuple[Path, Path]:
    new, old = tmp_path / "new.bin", tmp_path / "game.exe"
    new.write_bytes(b"new")
    old.write_bytes(b"old")
    return new, old


def test_a_read_only_file_is_made_writable_and_replaced_at_once(staged: tuple[Path, Path]) -> None:
    new, old = staged
    os.chmod(old, stat.S_IREAD)
    clock, files = Clock(0.0), WindowsFiles()
    runner = patient(files, clock)
    swap.replace(new, old, runner)
    assert old.read_bytes() == b"new" and not new.exists() and runner.waits == []


def test_a_file_a_scanner_holds_for_a_moment_is_waited_for(staged: tuple[Path, Path]) -> None:
    new, old = staged
    clock, files = Clock(0.0), WindowsFiles()
    files.open(old, refusals=3)
    runner = patient(files, clock)
    swap.replace(new, old, runner)
    assert old.read_bytes() == b"new" and len(runner.waits) == 3


def test_a_running_game_stops_the_swap_with_what_to_do_and_nothing_lost(staged: tuple[Path, Path]) -> None:
    new, old = staged
    clock, files = Clock(0.0), WindowsFiles()
    files.open(old)
    with pytest.raises(swap.FileInUse, match="close the game.*run the same command again") as caught:
        swap.replace(new, old, patient(files, clock))
    assert str(old) in str(caught.value)
    assert clock.now <= swap.PATIENCE
    assert new.read_bytes() == b"new" and old.read_bytes() == b"old"  # the journal can finish it later


def test_remove_goes_through_the_same_refusals(tmp_path: Path) -> None:
    gone = tmp_path / "dropped.dll"
    gone.write_bytes(b"x")
    os.chmod(gone, stat.S_IREAD)
    clock, files = Clock(0.0), WindowsFiles()
    swap.remove(gone, patient(files, clock))
    assert not gone.exists()


def test_without_a_patient_here_it_is_a_plain_rename(staged: tuple[Path, Path]) -> None:
    new, old = staged
    swap.replace(new, old)
    swap.remove(old)
    assert not old.exists() and not new.exists()
