"""Manifest deltas the tracker has made, kept so that every friend updating across the same pair costs one.

Making a delta reads both manifests (twice 123 MB at 100 GB) and takes about a second; the result is a few
hundred KB. The most recent pairs are kept in memory, and friends who ask for a pair at the same time share
one making of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from shared import manifest_delta
from shared.made_once import MadeOnce

KEPT = 64
KEPT_BYTES = 64 * 1024 * 1024


class DeltaCache(MadeOnce[tuple[str, str, str], bytes]):
    """(base digest, target digest, form) -> delta bytes, least recently used dropped first. The form is
    `manifest_delta.ENTRIES` for the entries form friends' updates ask for, "" for the whole-manifest one."""

    def __init__(self, kept: int = KEPT, kept_bytes: int = KEPT_BYTES) -> None:
        super().__init__(len, kept_bytes, kept)

    def __repr__(self) -> str:
        return f"DeltaCache(pairs={len(self.kept())}, making={self.making})"

    async def delta(
        self, base: str, target: str, manifests: Callable[[], Awaitable[tuple[bytes, bytes]]], form: str = ""
    ) -> bytes:
        """The delta from build `base` to `target`; `manifests()` gives their bytes when it has to be made."""

        async def made() -> bytes:
            old, new = await manifests()
            make = manifest_delta.make_entries if form == manifest_delta.ENTRIES else manifest_delta.make
            return await asyncio.to_thread(make, old, new)

        return await self.get((base, target, form), made)
