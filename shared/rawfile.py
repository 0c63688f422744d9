"""File descriptors that behave the same on Windows, macOS and Linux: binary, positioned, not following links.

Windows differs in three ways that matter here: `os.open` opens in text mode
unless told O_BINARY (a read would turn CRLF into LF and stop at Ctrl-Z, so a
chunk would never hash right), it has no `pread`/`pwrite` (each caller here
opens its own descriptor, so seek-then-read on it is just as safe), and it has
no O_NOFOLLOW (a link is refused by looking first: making one there needs a
privilege a game's folder does not grant).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

if sys.platform == "win32":
    BINARY = os.O_BINARY
    NOFOLLOW = 0
else:
    BINARY = 0
    NOFOLLOW = os.O_NOFOLLOW


def open_fd(path: str | os.PathLike[str], flags: int, mode: int = 0o777) -> int:
    """`os.open` in binary mode everywhere."""
    return os.open(path, flags | BINARY, mode)


def open_no_follow(path: str | os.PathLike[str]) -> int:
    """Open a file for reading, refusing a symbolic link (OSError), as O_NOFOLLOW does where it exists."""
    if not NOFOLLOW and os.path.islink(path):
        raise OSError(f"{os.fspath(path)} is a link; not followed")
    return os.open(path, os.O_RDONLY | NOFOLLOW | BINARY)


def seek_read(fd: int, size: int, offset: int) -> bytes:
    """pread for a descriptor no other thread uses: seek, then read until `size` bytes or the end."""
    os.lseek(fd, offset, os.SEEK_SET)
    parts: list[bytes] = []
    while size > 0:
        part = os.read(fd, size)
        if not part:
            break
        parts.append(part)
        size -= len(part)
    return b"".join(parts)


def seek_write(fd: int, data: bytes | memoryview, offset: int) -> int:
    """pwrite for a descriptor no other thread uses: seek, then write all of `data`."""
    os.lseek(fd, offset, os.SEEK_SET)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    return len(data)


pread: Callable[[int, int, int], bytes]
pwrite: Callable[[int, bytes | memoryview, int], int]
if sys.platform == "win32":
    pread, pwrite = seek_read, seek_write
else:
    pread, pwrite = os.pread, os.pwrite

MOST_BUFFERS = 1024  # IOV_MAX on Linux and macOS: pwritev refuses more buffers in one call
# Linux, the BSDs and macOS 11+ have pwritev; elsewhere (Windows) each buffer is its own write.
_pwritev: Callable[[int, list[bytes | memoryview], int], int] | None = getattr(os, "pwritev", None)


def pwrite_all(fd: int, buffers: list[bytes | memoryview], offset: int) -> int:
    """Write `buffers` back to back from `offset`, all of them: one system call where the system has pwritev
    (one release of the GIL for a run of chunks, where a write each had threads queue for it), a write each
    elsewhere. Returns the bytes written."""
    total = 0
    if _pwritev is None:
        for buffer in buffers:
            view = memoryview(buffer)
            while view:  # os.pwrite may write part (Windows' seek_write never does)
                done = pwrite(fd, view, offset + total)
                if done <= 0:
                    raise OSError(f"wrote nothing at byte {offset + total}; the disk may be full")
                total += done
                view = view[done:]
        return total
    pending, first = list(buffers), 0
    while first < len(pending):
        done = _pwritev(fd, pending[first : first + MOST_BUFFERS], offset + total)
        if done <= 0:
            raise OSError(f"wrote nothing at byte {offset + total}; the disk may be full")
        total += done
        while first < len(pending) and done >= len(pending[first]):
            done -= len(pending[first])
            first += 1
        if done:
            pending[first] = memoryview(pending[first])[done:]  # a short write: the rest of this buffer goes next
    return total
