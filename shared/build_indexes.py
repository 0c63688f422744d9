"""The builds a server reads, kept as compact indexes (shared/build_index.py) within a budget of bytes.

The tracker's plan reads the target build and those the friend holds (and, for chains, the game's recent
ones); the seeder checks each read ticket's requests against its build. Each is kept as its index, about 45
bytes a chunk (69 MB at 100 GB; a parsed `Manifest` was ~260 MB), made from the manifest's bytes on first
use: bytes already checked (parsed strictly when the build was committed, or matched against the digest a
ticket names), and `BuildIndex.scan` sends anything not canonical to that parse again. The least recently
used go first once the kept indexes pass the budget (the newest is always kept); requests that need the same
build at once share one making of it.

Keyed by the manifest's SHA-256, an index is the same whoever made it, so the servers of one process share
`SHARED`: `mist-server` runs the tracker and the seeder together, and a 100 GB build is scanned once (11-18
CPU s) and kept once (69 MB), not once by each.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from shared.build_index import BuildIndex

KEPT_BYTES = 512 * 1024 * 1024  # seven 100 GB builds, or every build of a few dozen small games


class BuildIndexes:
    """Manifest digest -> its build's index, least recently used dropped first beyond `kept_bytes`."""

    def __init__(self, kept_bytes: int = KEPT_BYTES) -> None:
        self.kept_bytes = kept_bytes
        self._kept: OrderedDict[str, BuildIndex] = OrderedDict()
        self._making: dict[str, asyncio.Future[BuildIndex]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"BuildIndexes(builds={len(self._kept)}, bytes={self.nbytes}, making={len(self._making)})"

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(b.nbytes for b in self._kept.values())

    def kept(self) -> list[str]:
        """The digests kept, least recently used first."""
        with self._lock:
            return list(self._kept)

    async def index(self, digest: str, manifest: Callable[[], Awaitable[bytes]]) -> BuildIndex:
        """The index of the build whose manifest has this digest; `manifest()` gives its bytes when it is made."""
        with self._lock:
            found = self._kept.get(digest)
            if found is not None:
                self._kept.move_to_end(digest)
                return found
        pending = self._making.get(digest)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[BuildIndex] = asyncio.get_running_loop().create_future()
        self._making[digest] = future
        try:
            made = await asyncio.to_thread(BuildIndex.scan, await manifest())
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: the waiters (if any) get it, the loop does not warn
            raise
        finally:
            self._making.pop(digest, None)
        future.set_result(made)
        with self._lock:
            self._kept[digest] = made
            while len(self._kept) > 1 and sum(b.nbytes for b in self._kept.values()) > self.kept_bytes:
                self._kept.popitem(last=False)
        return made


SHARED = BuildIndexes()  # every server of this process reads builds through it
