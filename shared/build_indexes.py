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
from collections.abc import Awaitable, Callable

from shared.build_index import BuildIndex
from shared.made_once import MadeOnce

KEPT_BYTES = 512 * 1024 * 1024  # seven 100 GB builds, or every build of a few dozen small games


class BuildIndexes(MadeOnce[str, BuildIndex]):
    """Manifest digest -> its build's index, least recently used dropped first beyond `kept_bytes`."""

    def __init__(self, kept_bytes: int = KEPT_BYTES) -> None:
        super().__init__(lambda index: index.nbytes, kept_bytes)

    def __repr__(self) -> str:
        return f"BuildIndexes(builds={len(self.kept())}, bytes={self.nbytes}, making={self.making})"

    async def index(
        self, digest: str, manifest: Callable[[], Awaitable[bytes]], held: tuple[BuildIndex, bytes] | None = None
    ) -> BuildIndex:
        """The index of the build whose manifest has this digest; `manifest()` gives its bytes when it is made,
        from `held` (a build before it: its index and manifest) where that fits (`BuildIndex.following_or_scan`)."""

        async def made() -> BuildIndex:
            return await asyncio.to_thread(BuildIndex.following_or_scan, await manifest(), held)

        return await self.get(digest, made)


SHARED = BuildIndexes()  # every server of this process reads builds through it
