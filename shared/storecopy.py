"""Copying objects from one directory store to another, each checked against its name on the way.

Backups copy the server's store into a backup's, and restores copy a
backup's into a new server's. Objects are named by the SHA-256 of their
content, so an object already in the target under its name, at the size of
the source's, is the same object and is left alone: a second backup into the
same place copies only what is new.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from shared import compression
from shared.chunkstore import ChunkStore
from shared.errors import ChunkCorrupt, ChunkMissing

THREADS = 4  # hashing and zstd release the GIL; file I/O waits
IN_FLIGHT = 4 * THREADS  # objects queued at once: a store can hold millions


@dataclass
class CopyReport:
    copied: int = 0
    bytes_copied: int = 0
    kept: int = 0  # already in the target
    bytes_total: int = 0  # stored bytes of every object asked for that the source or target has
    missing: list[str] = field(default_factory=list)  # not in the source
    corrupt: dict[str, str] = field(default_factory=dict)  # in the source, but damaged: why


def verified(store: ChunkStore, name: str) -> bytes:
    """An object's stored bytes, if they decompress to content that hashes to its name; else ChunkCorrupt."""
    data = store.get(name)
    try:
        actual = compression.content_sha256(data)
    except ChunkCorrupt as exc:
        raise ChunkCorrupt(f"object {name[:12]}: {exc}", name) from exc
    if actual != name:
        raise ChunkCorrupt(f"object {name[:12]} holds content whose SHA-256 is {actual[:12]}", name)
    return data


def _size(store: ChunkStore, name: str) -> int:
    return store.sizes([name]).get(name, -1)


def copy_one(source: ChunkStore, target: ChunkStore, name: str, recheck: bool) -> tuple[str, int, int]:
    """Copy one object unless the target has it; ("copied" | "kept", stored size, bytes written).

    `recheck` hashes an object the target already has instead of trusting its name and size (restore does).
    """
    size = _size(source, name)
    if size < 0:
        raise ChunkMissing(f"object {name[:12]} is not in {source.where}", name)
    if _size(target, name) == size:
        if not recheck:
            return "kept", size, 0
        try:
            verified(target, name)
            return "kept", size, 0
        except (ChunkCorrupt, ChunkMissing):
            pass
    data = verified(source, name)
    target.remove(name)  # a damaged or partial copy from before: put() keeps what it finds
    target.put(name, data)
    return "copied", len(data), len(data)


def copy_all(
    source: ChunkStore,
    target: ChunkStore,
    names: Iterable[str],
    recheck: bool = False,
    on_object: Callable[[str], None] | None = None,
) -> CopyReport:
    """Copy every named object the target lacks, verified; what is missing or damaged in the source is
    reported, not raised, so the caller decides (a backup retries, a restore refuses)."""
    report = CopyReport()

    def one(name: str) -> tuple[str, str, int, int, str]:
        try:
            outcome, size, written = copy_one(source, target, name, recheck)
            return name, outcome, size, written, ""
        except ChunkMissing:
            return name, "missing", 0, 0, ""
        except ChunkCorrupt as exc:
            return name, "corrupt", 0, 0, str(exc)

    pool = ThreadPoolExecutor(THREADS)
    queued = iter(names)
    in_flight = deque(pool.submit(one, name) for name in itertools.islice(queued, IN_FLIGHT))
    try:
        while in_flight:
            name, outcome, size, written, why = in_flight.popleft().result()
            following = next(queued, None)
            if following is not None:
                in_flight.append(pool.submit(one, following))
            if outcome == "missing":
                report.missing.append(name)
            elif outcome == "corrupt":
                report.corrupt[name] = why
            else:
                report.bytes_total += size
                if outcome == "copied":
                    report.copied += 1
                    report.bytes_copied += written
                else:
                    report.kept += 1
            if on_object is not None:
                on_object(name)
    finally:
        pool.shutdown(cancel_futures=True)  # on Ctrl-C or a full disk, stop instead of copying the rest
    return report
