"""A chunk store in memory: the contract suite's second implementation, and a store for tests that need no disk.

Thread-safe (the seeder and the copy pool call a store from several threads); last use is the injected clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator

from shared.chunkstore import Stored, check_name
from shared.errors import ChunkMissing


class MemoryChunkStore:
    files = None
    links = None

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.where = f"memory:{id(self):x}"
        self._clock = clock
        self._objects: dict[str, tuple[bytes, float]] = {}
        self._quarantined: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryChunkStore(objects={len(self._objects)}, quarantined={len(self._quarantined)})"

    def has(self, sha256: str) -> bool:
        return check_name(sha256) in self._objects

    def missing(self, hashes: Iterable[str]) -> list[str]:
        return [h for h in hashes if h not in self._objects]

    def sizes(self, hashes: Iterable[str]) -> dict[str, int]:
        objects = self._objects
        return {h: len(objects[h][0]) for h in hashes if h in objects}

    def get(self, sha256: str) -> bytes:
        found = self._objects.get(check_name(sha256))
        if found is None:
            raise ChunkMissing(f"chunk {sha256[:12]} is not in the store", sha256)
        return found[0]

    def put(self, sha256: str, compressed: bytes | memoryview) -> None:
        check_name(sha256)
        with self._lock:
            if sha256 not in self._objects:
                self._objects[sha256] = (bytes(compressed), self._clock())

    def touch(self, hashes: Iterable[str]) -> list[str]:
        absent = []
        with self._lock:
            now = self._clock()
            for h in hashes:
                found = self._objects.get(h)
                if found is None:
                    absent.append(h)
                else:
                    self._objects[h] = (found[0], now)
        return absent

    def listing(self) -> Iterator[Stored]:
        with self._lock:
            listed = [Stored(name, len(data), used) for name, (data, used) in self._objects.items()]
        return iter(listed)

    def remove(self, sha256: str) -> None:
        with self._lock:
            self._objects.pop(check_name(sha256), None)

    def remove_if_unused(self, sha256: str, cutoff: float) -> int | None:
        with self._lock:  # a touch cannot come between the look and the removal
            found = self._objects.get(sha256)
            if found is None or found[1] >= cutoff:
                return None
            del self._objects[sha256]
            return len(found[0])

    def quarantine(self, sha256: str) -> None:
        with self._lock:
            found = self._objects.pop(sha256, None)
            if found is not None:
                self._quarantined[sha256] = found[0]

    def quarantined(self) -> Iterator[str]:
        with self._lock:
            return iter(list(self._quarantined))

    def sweep_temporary(self, older_than: float) -> int:
        return 0  # nothing is written in pieces

    def probe(self) -> None:
        """Memory this process holds can always be read and written: nothing to check."""
