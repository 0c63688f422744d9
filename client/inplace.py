"""Writing only what changed into a file the install already has, instead of the whole new file beside it.

Where the filesystem clones (reflinks: btrfs, XFS, APFS), the staged file is a
clone of the installed one, and only the chunks that differ are written into
it; the swap then renames it in as usual, so the old file is never touched.

Elsewhere the installed file is updated where it lies, behind an undo journal:
before the first byte of it is overwritten, every range that will change (and
its tail, if it shrinks) is copied to `.mist/undo/`, made durable and sealed
by an index written last. Until the swap journal is written, a crash leaves a
file the next run puts back (`rollback`): the old build. Once it is written,
the new build stands and the undo journal is thrown away (`discard`), in that
order: the swap journal is cleared only after the undo journal is gone.

What this writes: the changed chunks once (both ways), and their old bytes
once more (the journal way): at most twice the bytes that changed, plus the
journal's index. "Changed" is counted in chunks: a chunk whose bytes at its
offset differ is written whole.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from client import crashpoints, filemode
from client.errors import InstallError
from client.journal import MIST_DIR
from shared import rawfile
from shared.chunking import ChunkRef
from shared.durable import sync_data, sync_directory, write_atomic
from shared.manifest import FileEntry

UNDO = "undo"
READ_BLOCK = 8 * 1024 * 1024
_FICLONE = 0x40049409  # Linux: _IOW(0x94, 9, int)
# Errors that mean "this filesystem (or this pair of paths) cannot clone", not that something went wrong.
_NO_CLONE = {errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EINVAL, errno.ENOTTY, errno.ENOSYS, errno.EPERM}


def clone(source: Path, dest: Path) -> bool:
    """Make `dest` a copy of `source` that shares its blocks (nothing is written but metadata); False where the
    filesystem or the platform cannot (then nothing was made)."""
    if sys.platform == "linux":
        return _clone_linux(source, dest)
    if sys.platform == "darwin":
        return _clone_macos(source, dest)
    return False  # Windows' ReFS block cloning is not used yet: the undo journal serves there


def _clone_linux(source: Path, dest: Path) -> bool:
    if sys.platform != "linux":  # fcntl.ioctl is POSIX-only: the type checker checks this for Windows too
        return False
    import fcntl

    src = rawfile.open_no_follow(source)
    try:
        dst = rawfile.open_fd(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            fcntl.ioctl(dst, _FICLONE, src)
        except OSError as exc:
            os.close(dst)
            dest.unlink(missing_ok=True)
            if exc.errno in _NO_CLONE:
                return False
            raise
        os.close(dst)
    finally:
        os.close(src)
    return True


def _clone_macos(source: Path, dest: Path) -> bool:
    import ctypes

    libc = ctypes.CDLL("/usr/lib/libSystem.B.dylib", use_errno=True)
    if libc.clonefile(os.fsencode(source), os.fsencode(dest), 0x0001) == 0:  # CLONE_NOFOLLOW
        return True
    if ctypes.get_errno() in _NO_CLONE:
        return False
    raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()), str(dest))


def differing(path: Path, entry: FileEntry) -> list[tuple[int, ChunkRef]]:
    """The chunks of `entry` whose bytes are not at their offset in the file at `path` (read, never written)."""
    fd = rawfile.open_no_follow(path)
    try:
        size = os.fstat(fd).st_size
        out = []
        for offset, ref in entry.offsets():
            if offset + ref.size > size:
                out.append((offset, ref))
                continue
            data = rawfile.pread(fd, ref.size, offset)
            if hashlib.sha256(data).hexdigest() != ref.sha256:
                out.append((offset, ref))
        return out
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Undo:
    """The index of one file's undo journal: where its saved bytes go back, and what it was before."""

    path: str  # relative to the install root
    old_size: int
    old_mode: int
    ranges: list[tuple[int, int]]  # (offset, length) of the old bytes saved, in the data file's order
    data_sha256: str


def _names(root: Path, rel: str) -> tuple[Path, Path]:
    stem = hashlib.sha256(rel.encode()).hexdigest()[:24]
    folder = root / MIST_DIR / UNDO
    return folder / f"{stem}.json", folder / f"{stem}.data"


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[list[int]] = []
    for offset, length in sorted(ranges):
        if merged and offset <= merged[-1][0] + merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], offset + length - merged[-1][0])
        else:
            merged.append([offset, length])
    return [(o, n) for o, n in merged]


def save(root: Path, rel: str, path: Path, writes: list[tuple[int, int]], new_size: int) -> int:
    """Journal the old bytes of every range about to be overwritten in `path` (and of the tail a shrink cuts off),
    then seal the journal; return the bytes saved. The file is resized to `new_size` only once the journal is sealed."""
    index, data_path = _names(root, rel)
    index.parent.mkdir(parents=True, exist_ok=True)
    fd = rawfile.open_fd(path, os.O_RDWR)
    try:
        st = os.fstat(fd)
        old_size = st.st_size
        wanted = [(o, min(n, old_size - o)) for o, n in writes if o < old_size]
        if new_size < old_size:
            wanted.append((new_size, old_size - new_size))
        ranges = _merge(wanted)
        digest = hashlib.sha256()
        out = rawfile.open_fd(data_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for offset, length in ranges:
                for at in range(offset, offset + length, READ_BLOCK):
                    block = rawfile.pread(fd, min(READ_BLOCK, offset + length - at), at)
                    digest.update(block)
                    _write_all(out, block)
            sync_data(out)
        finally:
            os.close(out)
        record = Undo(rel, old_size, st.st_mode & 0o7777, ranges, digest.hexdigest())
        write_atomic(index, json.dumps(asdict(record)).encode())  # the seal: from here on the file may change
        crashpoints.reach("undo-sealed")
        if new_size > old_size:
            os.ftruncate(fd, new_size)
    finally:
        os.close(fd)
    return sum(length for _, length in ranges)


def finish(path: Path, entry: FileEntry) -> None:
    """The last step of an in-place write: cut the file to its new size (a shrink), set its mode."""
    fd = rawfile.open_fd(path, os.O_RDWR)
    try:
        if os.fstat(fd).st_size != entry.size:
            os.ftruncate(fd, entry.size)
    finally:
        os.close(fd)
    filemode.set_mode(path, entry.executable)


def pending(root: Path) -> list[Undo]:
    """The sealed undo journals in an install folder (an unsealed one never let its file change)."""
    folder = root / MIST_DIR / UNDO
    if not folder.is_dir():
        return []
    records = []
    for index in sorted(folder.glob("*.json")):
        try:
            obj = json.loads(index.read_text())
            records.append(
                Undo(
                    obj["path"],
                    int(obj["old_size"]),
                    int(obj["old_mode"]),
                    [(int(o), int(n)) for o, n in obj["ranges"]],
                    str(obj["data_sha256"]),
                )
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InstallError(
                f"the undo journal {index} is damaged ({exc}); the folder may hold a half-updated file: "
                "run `mist verify --repair`"
            ) from exc
    return records


def rollback(root: Path) -> list[str]:
    """Put back every file an interrupted in-place update changed (the old build again); the paths restored."""
    restored = []
    for record in pending(root):
        index, data_path = _names(root, record.path)
        target = root / record.path
        data = data_path.read_bytes()
        if hashlib.sha256(data).hexdigest() != record.data_sha256:
            raise InstallError(
                f"the undo journal of {record.path} is damaged, so its old bytes cannot be put back; "
                "run `mist verify --repair` to fetch the file again"
            )
        fd = rawfile.open_fd(target, os.O_RDWR)
        try:
            at = 0
            for offset, length in record.ranges:
                rawfile.pwrite(fd, memoryview(data)[at : at + length], offset)
                at += length
            os.ftruncate(fd, record.old_size)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(target, record.old_mode)
        index.unlink()  # the file is whole again before its journal goes
        data_path.unlink(missing_ok=True)
        restored.append(record.path)
    if restored:
        sync_directory(root / MIST_DIR / UNDO)
    return restored


def discard(root: Path) -> None:
    """The new build stands (its swap journal is written): the old bytes are not needed any more."""
    folder = root / MIST_DIR / UNDO
    if folder.is_dir():
        shutil.rmtree(folder)
        sync_directory(root / MIST_DIR)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
