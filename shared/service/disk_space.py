"""The server's disk: saying "the disk is full" when it is, and warning on /healthz before it is.

SQLite says "database or disk is full", PostgreSQL SQLSTATE 53100, the store
ENOSPC: all three are the same trouble for the admin, who must free space,
and none of them is the database being down. /healthz reports the free space
of the data directory's disk once it drops under MIST_DISK_MIN_FREE bytes
(default 1 GB; read at start, shared/service/settings.py), so a monitor warns while there is still room to act.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

from shared.errors import StoreError
from shared.wording import count

ENV = "MIST_DISK_MIN_FREE"
DEFAULT_MIN_FREE = 1_000_000_000
DISK_FULL_MESSAGE = (
    "the server's disk is full; nothing was changed. The admin must free space on it (`mistpipe gc` removes what no build needs)"
)


class DiskFull(StoreError):
    """The server's disk has no room for what a request would write."""

    status = 507
    detail = {"disk_full": True}

    def __init__(self, message: str = DISK_FULL_MESSAGE) -> None:
        super().__init__(message)


def is_disk_full(exc: BaseException) -> bool:
    """Whether an error (from the database driver or the filesystem), or one it was raised from, says the disk
    is full."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno == errno.ENOSPC:
            return True
        if "53100" in (getattr(current, "sqlstate", None), getattr(current, "pgcode", None)):
            return True
        text = str(current)
        if "database or disk is full" in text or "No space left on device" in text:
            return True
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else (current.__cause__ or current.__context__)
    return False


def check_free(folder: Path, least: int) -> None:
    """A /healthz check: raise when the disk holding `folder` has less than `least` bytes free."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError as exc:
        raise StoreError(f"cannot tell the free space of {folder}: {exc.strerror or exc}") from exc
    if free < least:
        raise DiskFull(
            f"only {count(free // 1_000_000, 'MB')} free on the disk of {folder} (under "
            f"{least // 1_000_000} MB): free space before it fills"
        )
