"""One process at a time: an exclusive lock on a file, released when the process ends however it ends.

POSIX has flock; Windows has byte-range locks (msvcrt.locking) on the file's
first byte. Both are dropped by the OS when the holder dies, so a killed
command never leaves a stale lock behind (unlike a lock made of a file that
exists). Never waits: a held lock is `LockBusy` at once, for the caller to say
who holds it and what to do.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shared.errors import MistError
from shared.rawfile import open_fd


class LockBusy(MistError):
    """Another process holds the lock."""


# Both ways are defined on every OS (each imports its module when called), so the tests here can run the
# Windows one against a stand-in msvcrt; the ignores are for the platform whose stubs lack the other's calls.


def _take_posix(fd: int) -> None:
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # type: ignore[attr-defined,unused-ignore]  # POSIX only; checked for win32 too
    except BlockingIOError:
        raise LockBusy("held by another process") from None


def _release_posix(fd: int) -> None:
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_UN)  # type: ignore[attr-defined,unused-ignore]  # POSIX only; checked for win32 too


def _take_windows(fd: int) -> None:
    import msvcrt

    os.lseek(fd, 0, os.SEEK_SET)  # locking() locks from the current position
    try:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined,unused-ignore]  # Windows only; checked for Linux too
    except OSError:  # EACCES or EDEADLOCK: another process has the byte
        raise LockBusy("held by another process") from None


def _release_windows(fd: int) -> None:
    import msvcrt

    os.lseek(fd, 0, os.SEEK_SET)
    msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined,unused-ignore]  # Windows only; checked for Linux too


if sys.platform == "win32":
    take, release = _take_windows, _release_windows
else:
    take, release = _take_posix, _release_posix


@contextmanager
def exclusive(path: Path, busy: MistError | None = None) -> Iterator[None]:
    """Hold `path`'s lock for the block, creating the file if need be.

    If another process holds it, raise `busy` (the caller's words for who and what to do), else LockBusy.
    """
    fd = open_fd(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            take(fd)
        except LockBusy as exc:
            raise (busy or exc) from None
        try:
            yield
        finally:
            release(fd)
    finally:
        os.close(fd)
