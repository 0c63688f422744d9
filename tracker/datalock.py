"""The data directory's lock: one tracker serves a data directory at a time, and admin commands that change
what the tracker loaded at start (its signing key; later a restore) run only while no tracker does.

An advisory flock on DATA/tracker.lock, held for the life of the process: the
kernel drops it when the process dies, however it dies, so it never goes stale.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tracker.errors import Conflict

LOCK_FILE = "tracker.lock"


class DataInUse(Conflict):
    """Another tracker or admin command holds the data directory."""


def hold(data: Path, purpose: str) -> int:
    """Take the lock for the life of this process (or until the returned descriptor is closed)."""
    data.mkdir(parents=True, exist_ok=True)
    fd = os.open(data / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
        os.close(fd)
        raise DataInUse(
            f"{data} is in use by {holder}; stop that tracker (mist-server, mist-tracker) or let that command finish, "
            f"then {purpose} again"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} ({purpose})\n".encode(), 0)
    return fd


@contextmanager
def held(data: Path, purpose: str) -> Iterator[None]:
    fd = hold(data, purpose)
    try:
        yield
    finally:
        os.close(fd)
