"""A stand-in for Windows' msvcrt.locking, so the Windows file lock's code runs here with real lock semantics.

msvcrt.locking(fd, mode, n) locks n bytes from the file's current position, across processes, and raises
OSError when another process holds them (LK_NBLCK). POSIX record locks (fcntl.lockf) behave the same way
between processes, so they carry it. Installed as sys.modules["msvcrt"] by the tests that need it.
"""

from __future__ import annotations

import errno
import fcntl
import os

LK_UNLCK, LK_LOCK, LK_NBLCK = 0, 1, 2


def locking(fd: int, mode: int, nbytes: int) -> None:
    start = os.lseek(fd, 0, os.SEEK_CUR)
    if mode == LK_UNLCK:
        fcntl.lockf(fd, fcntl.LOCK_UN, nbytes, start)
        return
    if mode != LK_NBLCK:
        raise ValueError("the stand-in knows LK_NBLCK and LK_UNLCK only")
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, nbytes, start)
    except BlockingIOError:
        raise OSError(errno.EACCES, "Permission denied") from None
