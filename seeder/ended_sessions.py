"""A standalone seeder's view of the login sessions the admin ended, so their tickets stop working at once.

Tickets are checked offline, which alone would let a disabled friend keep
downloading for the hour a ticket lives. The tracker publishes the opaque ids
of the sessions it ended lately, signed with its key (GET
/api/revoked-sessions); a seeder given `--tracker-url` reads that list again
whenever a ticket naming a session arrives and its copy is older than a few
seconds. If the tracker cannot be reached, the last list read stays in force.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from shared.errors import SignatureError
from shared.signing import verify

log = logging.getLogger("mist.seeder")
FRESH_SECONDS = 5.0
TIMEOUT = aiohttp.ClientTimeout(total=10)


async def fetch_ended(tracker_url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
        async with http.get(tracker_url.rstrip("/") + "/api/revoked-sessions") as response:
            response.raise_for_status()
            body = await response.json(content_type=None)
    if not isinstance(body, dict):
        raise ValueError("the answer is not a JSON object")
    return body


def read_signed(body: dict[str, Any], public_key: str) -> frozenset[str]:
    """The session ids of a signed list; ValueError if it is malformed or not signed by `public_key`."""
    payload, signature = body.get("payload"), body.get("signature")
    if not isinstance(payload, str) or not isinstance(signature, str):
        raise ValueError("the answer has no signed list")
    try:
        verify(public_key, payload.encode(), signature)
    except SignatureError as exc:
        raise ValueError("the list is not signed by the tracker key this seeder trusts") from exc
    sessions = json.loads(payload).get("sessions")
    if not isinstance(sessions, list) or not all(isinstance(s, str) for s in sessions):
        raise ValueError("the list's sessions are malformed")
    return frozenset(sessions)


@dataclass
class EndedSessions:
    """Called with a ticket's session id: whether the tracker says that session was ended."""

    tracker_url: str
    public_key: Callable[[], str]  # the key tickets are checked with now (it follows rotations)
    fetch: Callable[[str], Awaitable[dict[str, Any]]] = fetch_ended
    clock: Callable[[], float] = time.monotonic
    _ended: frozenset[str] = frozenset()
    _read_at: float = float("-inf")
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __repr__(self) -> str:
        return f"EndedSessions(tracker_url={self.tracker_url!r}, ended={len(self._ended)})"

    async def __call__(self, session: str) -> bool:
        if self.clock() - self._read_at >= FRESH_SECONDS:
            async with self._lock:
                if self.clock() - self._read_at >= FRESH_SECONDS:
                    await self._read()
        return session in self._ended

    async def _read(self) -> None:
        self._read_at = self.clock()  # also after a failure: a dead tracker is asked again in FRESH_SECONDS
        try:
            self._ended = read_signed(await self.fetch(self.tracker_url), self.public_key())
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
            log.warning(
                "could not read the ended sessions from the tracker at %s (%s); the last list read stays in force",
                self.tracker_url,
                exc,
            )
