"""The exclusive file lock, both ways: flock here, and Windows' msvcrt.locking run against a stand-in with the
same cross-process semantics (tests/platforms/fake_msvcrt.py). Holders are real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from shared import filelock
from shared.errors import MistError

ROOT = Path(__file__).resolve().parents[2]
HOLDER = """
import os, sys
sys.path.insert(0, {root!r})
way = sys.argv[2]
if way == "windows":
    from tests.platforms import fake_msvcrt
    sys.modules["msvcrt"] = fake_msvcrt
from shared import filelock
take = filelock._take_windows if way == "windows" else filelock._take_posix
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
take(fd)
print("held", flush=True)
sys.stdin.readline()  # until the test says so, or is killed
"""


@contextmanager
def holder(path: Path, way: str) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen([sys.executable, "-c", HOLDER.format(root=str(ROOT)), str(path), way],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    try:
        assert process.stdout.readline() == "held\n"
        yield process
    finally:
        process.kill()
        process.wait()


def test_a_second_process_is_told_the_lock_is_busy_with_the_callers_words(tmp_path: Path) -> None:
    path = tmp_path / "game.lock"
    with holder(path, "posix"):
        with pytest.raises(MistError, match="another command works on it"):
            with filelock.exclusive(path, MistError("another command works on it")):
                pass
        with pytest.raises(filelock.LockBusy):
            with filelock.exclusive(path):
                pass


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    path = tmp_path / "game.lock"
    with holder(path, "posix") as process:
        process.kill()
        process.wait()
    with filelock.exclusive(path):
        assert path.exists()


@pytest.fixture
def windows_crt(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.platforms import fake_msvcrt

    monkeypatch.setitem(sys.modules, "msvcrt", fake_msvcrt)


@pytest.mark.usefixtures("windows_crt")
def test_the_windows_way_refuses_while_another_process_holds_the_byte_and_takes_it_after(tmp_path: Path) -> None:
    path = tmp_path / "game.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        with holder(path, "windows") as process:
            os.lseek(fd, 10, os.SEEK_SET)  # wherever the file position is, the lock is on byte 0
            with pytest.raises(filelock.LockBusy):
                filelock._take_windows(fd)
            process.kill()
            process.wait()
        filelock._take_windows(fd)
        filelock._release_windows(fd)
        filelock._take_windows(fd)  # released, so it can be taken again
    finally:
        os.close(fd)


def test_each_platform_gets_its_way() -> None:
    expected = filelock._take_windows if sys.platform == "win32" else filelock._take_posix
    assert filelock.take is expected
