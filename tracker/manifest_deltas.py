"""Manifest deltas the tracker has made, kept so that every friend updating across the same pair costs one.

Making a delta reads both manifests (twice 123 MB at 100 GB) and takes about a second; the result is a few
hundred KB. The most recent pairs are kept in memory, and friends who ask for a pair at the same time share
one making of it.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from shared import manifest_delta

KEPT = 64
KEPT_BYTES = 64 * 1024 * 1024


class DeltaCache:
    """(base digest, target digest, form) -> delta bytes, least recently used dropped first. The form is
    `manifest_delta.ENTRIES` for the entries form friends' updates ask for, "" for the whole-manifest one."""

    def __init__(self, kept: int = KEPT, kept_bytes: int = KEPT_BYTES) -> None:
        self.kept, self.kept_bytes = kept, kept_bytes
        self._deltas: OrderedDict[tuple[str, str, str], bytes] = OrderedDict()
        self._making: dict[tuple[str, str, str], asyncio.Future[bytes]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DeltaCache(pairs={len(self._deltas)}, making={len(self._making)})"

    async def delta(
        self, base: str, target: str, manifests: Callable[[], Awaitable[tuple[bytes, bytes]]], form: str = ""
    ) -> bytes:
        """The delta from build `base` to `target`; `manifests()` gives their bytes when it has to be made."""
        key = (base, target, form)
        with self._lock:
            found = self._deltas.get(key)
            if found is not None:
                self._deltas.move_to_end(key)
                return found
        pending = self._making.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._making[key] = future
        try:
            old, new = await manifests()
            make = manifest_delta.make_entries if form == manifest_delta.ENTRIES else manifest_delta.make
            made = await asyncio.to_thread(make, old, new)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: the waiters (if any) get it, the loop does not warn
            raise
        finally:
            self._making.pop(key, None)
        future.set_result(made)
        with self._lock:
            self._deltas[key] = made
            while len(self._deltas) > self.kept or sum(map(len, self._deltas.values())) > self.kept_bytes:
                self._deltas.popitem(last=False)
        return made
