"""A standalone seeder's hold on the tracker's key: followed to the tracker's next key along signed hand-overs.

`mist-seeder --tracker-url` learns the key once at start. After `mist-admin
rotate-key` the restarted tracker signs tickets with a new key; the first
such ticket sends the seeder to the tracker's /api/info, and the seeder moves
to the new key only if hand-overs signed by the key it holds lead there. A
forged ticket can make it ask at most once per RECHECK_AFTER seconds.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from shared.errors import KeyHandoverError
from shared.handover import follow, parse_chain
from shared.signing import fingerprint

log = logging.getLogger("mist.seeder")
RECHECK_AFTER = 10.0
TIMEOUT = aiohttp.ClientTimeout(total=10)


async def fetch_info(tracker_url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
        async with http.get(tracker_url.rstrip("/") + "/api/info") as response:
            response.raise_for_status()
            body = await response.json(content_type=None)
    if not isinstance(body, dict) or not isinstance(body.get("public_key"), str):
        raise ValueError("the answer does not name the tracker's key")
    return body


@dataclass
class KeyFollower:
    """Called with the key a ticket failed with; answers the key to check tickets with now."""

    tracker_url: str
    public_key: str
    fetch: Callable[[str], Awaitable[dict[str, Any]]] = fetch_info
    clock: Callable[[], float] = time.monotonic
    _asked: float = -math.inf
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __repr__(self) -> str:
        return f"KeyFollower(tracker_url={self.tracker_url!r}, key={fingerprint(self.public_key)})"

    async def __call__(self, failed_with: str) -> str:
        async with self._lock:
            if self.public_key != failed_with or self.clock() - self._asked < RECHECK_AFTER:
                return self.public_key  # another request followed it already, or asked a moment ago
            self._asked = self.clock()
            try:
                info = await self.fetch(self.tracker_url)
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
                log.warning(
                    "a ticket is not signed by the key this seeder trusts, and the tracker at %s could not be "
                    "asked for its key (%s); the ticket is refused",
                    self.tracker_url,
                    exc,
                )
                return self.public_key
            served = str(info["public_key"])
            if served == self.public_key:
                return self.public_key  # the key did not move: the ticket was forged
            try:
                follow(self.public_key, served, parse_chain(info.get("key_handovers", [])))
            except KeyHandoverError as exc:
                log.error(
                    "the tracker at %s now signs with %s, and no hand-over signed by the key this seeder trusts "
                    "(%s) leads to it (%s); its tickets are refused. If the admin replaced the key, restart "
                    "mist-seeder",
                    self.tracker_url,
                    fingerprint(served),
                    fingerprint(self.public_key),
                    exc,
                )
                return self.public_key
            log.info(
                "the tracker's signing key was rotated; now trusting %s, handed over by %s",
                fingerprint(served),
                fingerprint(self.public_key),
            )
            self.public_key = served
            return served
