"""Stored objects kept open, with their sizes and pack record headers, so a busy seeder skips the file system.

Under load, each object of a pack cost six system calls (stat, open, fstat,
write, sendfile, close) and the Python around them; the open and the stats
walk the store's path every time. Objects never change (they are named by
their content), so this process remembers, for a short while (`TTL`), each
recent object's size and record header, and keeps the most recent ones open
(as many as a quarter of its file limit allows, at most `MOST_OPEN`):
a pack's object then costs a header write and a sendfile.

What stays true:
- An open file is closed only when no answer is sending from it (`refs`), so
  its descriptor number cannot be reused under an answer.
- Nothing is trusted for longer than `TTL` seconds: an object the collector
  removed is found gone within that time, and its disk space is given back.
  Its bytes were right while it was kept: they are what its name says.
- A size remembered for an object that then proves gone (the answer had
  promised it) is forgotten, so the client's retry gets MISSING.

One instance per process, used from its event loop only.
"""

from __future__ import annotations

import os
import resource
import time
from collections import OrderedDict
from collections.abc import Callable

from shared import pack
from shared.chunkstore import LocalFiles
from shared.errors import ChunkMissing

TTL = 30.0  # seconds a size or an open file is trusted without looking at the store again
KNOWN = 65_536  # sizes and headers remembered (about 150 bytes each)
# Files kept open when no answer uses them: as many as a new build's hot objects (8192 chunks are about
# 600 MiB), within a quarter of the process's file limit, so sockets and the rest keep three quarters.
MOST_OPEN = 8192


def raise_file_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit (at most 1M), as servers do; the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard if hard != resource.RLIM_INFINITY else 1 << 20, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return soft


def files_to_keep_open() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = MOST_OPEN * 4 if soft == resource.RLIM_INFINITY else soft
    return max(16, min(MOST_OPEN, limit // 4))


class OpenFile:
    """An object's open file, shared by the answers sending it; closed once evicted and unused."""

    __slots__ = ("fd", "size", "opened", "refs", "evicted")

    def __init__(self, fd: int, size: int, opened: float) -> None:
        self.fd, self.size, self.opened = fd, size, opened
        self.refs = 0
        self.evicted = False


class OpenObjects:
    def __init__(
        self, store: LocalFiles, clock: Callable[[], float] = time.monotonic, known: int = KNOWN, keep_open: int | None = None
    ) -> None:
        self.store = store
        self.clock = clock
        self.known_limit, self.open_limit = known, keep_open or files_to_keep_open()
        self._known: OrderedDict[str, tuple[int, bytes, float]] = OrderedDict()  # name -> size, header, when seen
        self._open: OrderedDict[str, OpenFile] = OrderedDict()

    def record(self, name: str, now: float) -> tuple[int, bytes] | None:
        """The object's stored size and its pack record header, or None if the store lacks it."""
        known = self._known.get(name)
        if known is not None and now - known[2] < TTL:
            return known[0], known[1]
        try:
            size = os.stat(self.store.file(name)).st_size
        except FileNotFoundError:
            self._known.pop(name, None)
            return None
        header = pack.encode_header(pack.CHUNK, name, size)
        self._known[name] = (size, header, now)
        self._known.move_to_end(name)
        if len(self._known) > self.known_limit:
            self._known.popitem(last=False)
        return size, header

    def acquire(self, name: str, size: int) -> OpenFile:
        """The object's open file, of the `size` promised; raises ChunkMissing if it is not in the store with that size."""
        entry = self._open.get(name)
        now = self.clock()
        if entry is not None and now - entry.opened < TTL and entry.size == size:
            self._open.move_to_end(name)
            entry.refs += 1
            return entry
        if entry is not None:
            self._evict(name)
        try:
            fd = os.open(self.store.file(name), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            self._known.pop(name, None)
            raise ChunkMissing(f"{name[:12]} is no longer in the store", name) from None
        actual = os.fstat(fd).st_size
        if actual != size:
            os.close(fd)
            self._known.pop(name, None)
            raise ChunkMissing(f"{name[:12]} is no longer in the store with the size an answer promised", name)
        entry = OpenFile(fd, size, now)
        entry.refs = 1
        self._open[name] = entry
        if len(self._open) > self.open_limit:
            self._evict(next(iter(self._open)))
        return entry

    def release(self, entry: OpenFile) -> None:
        entry.refs -= 1
        if entry.evicted and entry.refs == 0:
            os.close(entry.fd)

    def _evict(self, name: str) -> None:
        entry = self._open.pop(name)
        entry.evicted = True
        if entry.refs == 0:
            os.close(entry.fd)

    def close(self) -> None:
        """Close every file no answer is using (at shutdown); those in use close when released."""
        for name in list(self._open):
            self._evict(name)
        self._known.clear()

    def __len__(self) -> int:
        return len(self._open)
