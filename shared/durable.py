"""Making writes survive a power loss: fsync the directory that holds a rename, and a file's data.

Windows cannot open a directory with `os.open` and needs no directory fsync: NTFS
journals its metadata, so a completed rename is durable. macOS and Linux need it.
`os.fdatasync` (data without the metadata the next read does not need) exists on
Linux only; elsewhere `os.fsync` does the same job.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from shared.rawfile import open_fd


def sync_directory(path: Path) -> None:
    """fsync a directory, so a rename or a new file in it survives a power loss (a no-op on Windows)."""
    if sys.platform == "win32":
        return
    fd = open_fd(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_data(fd: int) -> None:
    """Make a file's data durable: fdatasync where there is one, fsync elsewhere."""
    if sys.platform == "linux":
        os.fdatasync(fd)
    else:
        os.fsync(fd)


@contextmanager
def _replacing(path: Path, mode: int = 0o666) -> Iterator[BinaryIO]:
    """A file to write `path`'s new content into; made durable and put in its place, all at once, at the end."""
    tmp = path.with_name(path.name + ".tmp")
    with os.fdopen(open_fd(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "wb") as f:
        yield f
        f.flush()
        os.fsync(f.fileno())
    _put_in_place(tmp, path)


def _put_in_place(tmp: Path, path: Path) -> None:
    os.replace(tmp, path)
    sync_directory(path.parent)


def write_atomic(path: Path, data: bytes, mode: int = 0o666) -> None:
    """Replace `path` with `data` all at once (`mode`, before the umask: 0o600 for secrets)."""
    with _replacing(path, mode) as f:
        f.write(data)


def copy_atomic(source: Path, path: Path) -> None:
    """Replace `path` with a copy of the file `source` all at once, a piece at a time (a 100 GB build's manifest
    is 124 MB: `write_atomic` of its bytes would need them all in memory)."""
    with source.open("rb") as src, _replacing(path) as f:
        shutil.copyfileobj(src, f, 1 << 20)


def link_or_copy_atomic(source: Path, path: Path) -> None:
    """`copy_atomic`, as a hard link where the file system allows one (same volume, NTFS, APFS, ext4...): a
    100 GB build's manifest is then neither read nor written again, only made durable where it is."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.unlink(missing_ok=True)
        os.link(source, tmp)
    except OSError:  # another volume, a file system without links (FAT), or not allowed: copied
        copy_atomic(source, path)
        return
    # Written by whoever wrote `source`, perhaps not yet durable (Windows fsyncs a writable handle only).
    with tmp.open("r+b") as f:
        os.fsync(f.fileno())
    _put_in_place(tmp, path)
