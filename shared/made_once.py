"""Values made once per key however many ask at once, kept within a count and a budget of bytes.

The servers make a few costly things from stored manifests: a build's index (seconds at 100 GB), a manifest
delta between two builds (a second). Friends who need the same one at the same time share one making of it,
the results are kept for the next ones, and the least recently used go first once the kept ones pass the
bounds; the newest is always kept, however large. A making that fails is not remembered.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class MadeOnce(Generic[K, V]):
    """key -> value, `size(value)` bytes each; at most `kept` values (None: any number) and `kept_bytes` in all."""

    def __init__(self, size: Callable[[V], int], kept_bytes: int, kept: int | None = None) -> None:
        self.size, self.kept_bytes, self.most = size, kept_bytes, kept
        self._kept: OrderedDict[K, V] = OrderedDict()
        self._making: dict[K, asyncio.Future[V]] = {}
        self._lock = threading.Lock()  # the kept values are also read from threads

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(map(self.size, self._kept.values()))

    @property
    def making(self) -> int:
        return len(self._making)

    def peek(self, key: K) -> V | None:
        """The value of `key` if it is kept (it counts as used), without making it."""
        with self._lock:
            found = self._kept.get(key)
            if found is not None:
                self._kept.move_to_end(key)
            return found

    def kept(self) -> list[K]:
        """The keys kept, least recently used first."""
        with self._lock:
            return list(self._kept)

    async def get(self, key: K, make: Callable[[], Awaitable[V]]) -> V:
        """The value of `key`, from `make()` if it is neither kept nor being made."""
        found = self.peek(key)
        if found is not None:
            return found
        pending = self._making.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._making[key] = future
        try:
            made = await make()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: the waiters (if any) get it, the loop does not warn
            raise
        finally:
            self._making.pop(key, None)
        future.set_result(made)
        self.put(key, made)
        return made

    def put(self, key: K, value: V) -> None:
        """Keep `value` as the newest, dropping the least recently used beyond the bounds (for values made
        without `get`: where friends asking at once is not the case, or the making is not a coroutine)."""
        with self._lock:
            self._kept[key] = value
            self._kept.move_to_end(key)
            while len(self._kept) > 1 and (
                (self.most is not None and len(self._kept) > self.most)
                or sum(map(self.size, self._kept.values())) > self.kept_bytes
            ):
                self._kept.popitem(last=False)
