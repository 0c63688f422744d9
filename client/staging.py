"""The staging folder: where the new versions of files are built, chunk by verified chunk, before the swap.

Blocking file work, run in threads. A staged file is named after its path and
content, so a resumed install finds its own half-built files, keeps every chunk
in them that still hashes right, and fetches only the rest.

A file built from chunks is not hashed whole again: every chunk was hashed
before it was written at its offset, the signed manifest's chunks cover the
file exactly, and `prepare` re-hashes what a resumed run finds. Files made
from a patch or a delta are hashed whole (`finish(..., hash_whole=True)`).
Staged files are made durable together before the journal is written
(`make_durable`): one `syncfs` on Linux, an fsync per file elsewhere.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from client import filemode
from client.journal import MIST_DIR
from shared import rawfile
from shared.chunking import ChunkRef
from shared.errors import ChunkCorrupt
from shared.manifest import FileEntry

STAGING = "staging"
READ_BLOCK = 4 * 1024 * 1024


def staged_rel(entry: FileEntry) -> str:
    """The staged file's name under .mist/: stable for the same path and content, so a resume finds it."""
    return _staged_rel(entry.path, entry.sha256)


def _staged_rel(path: str, sha256: str) -> str:
    return f"{STAGING}/{hashlib.sha256(path.encode()).hexdigest()[:16]}-{sha256[:16]}"


def staged_path(root: Path, entry: FileEntry) -> Path:
    return _staged_path(root, entry.path, entry.sha256)


@functools.lru_cache(maxsize=4096)
def _staged_path(root: Path, path: str, sha256: str) -> Path:
    """Kept (the last 4,096 files'): an install asks for each file's staged path at eight steps, and making
    one (a hash and two `Path` joins, 9 µs) was 8 ms of a 100 MB install's bookkeeping, 80 ms of a 1 GB one's."""
    return root / MIST_DIR / _staged_rel(path, sha256)


def read_verified(path: str | Path, offset: int, ref: ChunkRef) -> bytes | None:
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
    """What preparing one staged file left to fill, and what a resumed run (or a clone) already held there."""

    needed: list[tuple[int, ChunkRef]] = field(default_factory=list)
    resumed: int = 0
    path: Path | None = None  # where the chunks go when not the staged file: the installed file, updated in place
    undo: int = 0  # bytes saved to the undo journal first (updated in place)
    cloned: bool = False  # the staged file began as a clone of the installed one


def prepare(root: Path, entry: FileEntry) -> Prepared:
    """Create the staged file at its size, or resume it: every chunk already there and hashing right is kept."""
    path = staged_path(root, entry)
    result = Prepared()
    try:
        fd = rawfile.open_fd(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        existed = False
    except FileExistsError:
        fd = rawfile.open_fd(path, os.O_RDWR, 0o644)
        existed = True
    try:
        if not existed or os.fstat(fd).st_size != entry.size:
            os.ftruncate(fd, entry.size)
        for offset, ref in entry.offsets():
            if existed and ref.size and _chunk_there(fd, offset, ref):
                result.resumed += ref.size
            elif ref.size:
                result.needed.append((offset, ref))
    finally:
        os.close(fd)
    return result


def _chunk_there(fd: int, offset: int, ref: ChunkRef) -> bool:
    data = rawfile.pread(fd, ref.size, offset)
    return len(data) == ref.size and hashlib.sha256(data).hexdigest() == ref.sha256


class ChunkWriter:
    """Writes verified chunks into staged files, each file opened once per batch rather than once per chunk,
    and starts the writeback of what it wrote when the batch ends. One per thread (Windows seeks to write).

    Chunks that follow each other in one file are held and written together (`rawfile.pwrite_all`): one
    system call and one release of the GIL for a batch's run, where a call per chunk had the download's
    threads queue for the GIL and for the file's lock. Nothing held is written if the batch fails, and
    what `write` is given must not change until the writer is closed."""

    def __init__(self) -> None:
        self._open: dict[Path, list[int]] = {}  # path -> [fd, lowest offset written, end of the highest]
        self._run: _Run | None = None  # the chunks held, back to back in one file

    def __repr__(self) -> str:
        return f"ChunkWriter(open={len(self._open)})"

    def write(self, targets: list[tuple[Path, int]], data: bytes | memoryview) -> None:
        size = len(data)
        for path, offset in targets:
            held = self._open.get(path)
            if held is None:
                held = self._open[path] = [rawfile.open_fd(path, os.O_WRONLY), offset, offset]
            run = self._run
            if run is None or run.fd != held[0] or run.end != offset:
                self._flush()
                run = self._run = _Run(held[0], offset, offset)
            run.buffers.append(data)
            run.end += size
            held[1], held[2] = min(held[1], offset), max(held[2], offset + size)

    def _flush(self) -> None:
        run, self._run = self._run, None
        if run is not None:
            rawfile.pwrite_all(run.fd, run.buffers, run.start)

    def __enter__(self) -> "ChunkWriter":
        return self

    def __exit__(self, failed: type[BaseException] | None, *exc: object) -> None:
        try:
            if failed is None:
                self._flush()
        finally:
            self._run = None
            for fd, low, high in self._open.values():
                try:
                    start_writeback(fd, low, high - low)
                finally:
                    os.close(fd)
            self._open.clear()


@dataclass
class _Run:
    """Chunks held back to back in one file, `start` to `end`, for one `rawfile.pwrite_all`."""

    fd: int
    start: int
    end: int
    buffers: list[bytes | memoryview] = field(default_factory=list)


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


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while block := f.read(READ_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def finish(root: Path, entry: FileEntry, hash_whole: bool = False) -> None:
    """Set the staged file's mode; with `hash_whole` (a file made by a patch), first check it against the manifest."""
    path = staged_path(root, entry)
    if hash_whole:
        actual = file_sha256(path)
        if actual != entry.sha256:
            path.unlink(missing_ok=True)
            raise ChunkCorrupt(
                f"{entry.path} assembled to {actual[:12]} instead of {entry.sha256[:12]}; it was discarded, run the "
                "command again",
                entry.sha256,
            )
    filemode.set_mode(path, entry.executable)


def make_durable(root: Path, paths: list[Path]) -> None:
    """Every file the update wrote on the disk before the journal names them: a power cut after the journal then
    finds whole files. Linux: one syncfs of the install's filesystem; elsewhere an fsync per file."""
    if not paths:
        return
    if _syncfs is not None:
        fd = rawfile.open_fd(root / MIST_DIR, os.O_RDONLY)
        try:
            if _syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    for path in paths:
        fd = rawfile.open_fd(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _syncfs_call() -> Callable[[int], int] | None:
    """libc's syncfs(fd) on Linux (Python has no os.syncfs); None elsewhere."""
    if sys.platform != "linux":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        call = libc.syncfs
        call.argtypes = (ctypes.c_int,)
    except (OSError, AttributeError):
        return None
    return lambda fd: int(call(fd))


_syncfs = _syncfs_call()
