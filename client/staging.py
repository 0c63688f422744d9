"""Building the new versions of files in the staging folder, from local chunks where they verify.

Blocking file work, run in threads. A staged file is named after its path and
content, so a resumed install finds its own half-built files, keeps every chunk
in them that still hashes right, and fetches only the rest.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from client import filemode
from client.journal import MIST_DIR
from client.plan import Location
from shared import rawfile
from shared.chunking import ChunkRef
from shared.errors import ChunkCorrupt
from shared.manifest import FileEntry

STAGING = "staging"
READ_BLOCK = 4 * 1024 * 1024


def staged_rel(entry: FileEntry) -> str:
    """The staged file's name under .mist/: stable for the same path and content, so a resume finds it."""
    return f"{STAGING}/{hashlib.sha256(entry.path.encode()).hexdigest()[:16]}-{entry.sha256[:16]}"


def staged_path(root: Path, entry: FileEntry) -> Path:
    return root / MIST_DIR / staged_rel(entry)


def read_verified(path: str, offset: int, ref: ChunkRef) -> bytes | None:
    """The chunk's bytes from a local file if they are there and hash right, else None."""
    try:
        fd = rawfile.open_fd(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        data = rawfile.pread(fd, ref.size, offset)
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(data) == ref.size and hashlib.sha256(data).hexdigest() == ref.sha256:
        return data
    return None


@dataclass
class Prepared:
    """What preparing one staged file left to fetch, and what it took from disk."""

    needed: list[tuple[int, ChunkRef]] = field(default_factory=list)
    resumed: int = 0
    copied: int = 0


def prepare(root: Path, entry: FileEntry, local: dict[str, tuple[Location, ...]]) -> Prepared:
    """Create or resume the staged file; fill every chunk that is already there or can be copied locally."""
    path = staged_path(root, entry)
    result = Prepared()
    existed = path.exists()
    fd = rawfile.open_fd(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if os.fstat(fd).st_size != entry.size:
            os.ftruncate(fd, entry.size)
        for offset, ref in entry.offsets():
            if existed and read_verified(str(path), offset, ref) is not None:
                result.resumed += ref.size
                continue
            for location in local.get(ref.sha256, ()):
                data = read_verified(location.path, location.offset, ref)
                if data is not None:
                    rawfile.pwrite(fd, data, offset)
                    result.copied += ref.size
                    break
            else:
                result.needed.append((offset, ref))
    finally:
        os.close(fd)
    return result


def _writeback_starter() -> Callable[[int, int, int], None]:
    """Linux's sync_file_range(SYNC_FILE_RANGE_WRITE): start writing a range to disk now, without waiting.

    Staged files must be fsynced before the swap; starting their writeback as each chunk lands lets the
    disk work while the network still brings the rest, so the final fsync finds little left to do.
    Elsewhere (or without libc) the kernel's own writeback does the job and this does nothing.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        sync_file_range = libc.sync_file_range
        sync_file_range.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    except (OSError, AttributeError):
        return lambda fd, offset, length: None
    return lambda fd, offset, length: sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE) and None


_SYNC_FILE_RANGE_WRITE = 2
start_writeback = _writeback_starter()


def write_at(path: Path, offset: int, data: bytes) -> None:
    fd = rawfile.open_fd(path, os.O_WRONLY)
    try:
        rawfile.pwrite(fd, data, offset)
        start_writeback(fd, offset, len(data))
    finally:
        os.close(fd)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while block := f.read(READ_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def finish(root: Path, entry: FileEntry) -> None:
    """Check the whole staged file against the manifest, set its mode, and make it durable before the swap."""
    path = staged_path(root, entry)
    actual = file_sha256(path)
    if actual != entry.sha256:
        path.unlink(missing_ok=True)
        raise ChunkCorrupt(
            f"{entry.path} assembled to {actual[:12]} instead of {entry.sha256[:12]}; it was discarded, run the command again",
            entry.sha256,
        )
    filemode.set_mode(path, entry.executable)
    fd = rawfile.open_fd(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
