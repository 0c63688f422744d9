"""The live stream of what changes: jobs, progress, news, notices and the account, as Server-Sent Events.

Each open page holds one stream (GET /api/events). A page that cannot keep
up loses old progress samples, never a state change: each subscriber has a
bounded queue, and when it is full the oldest `progress` event makes room.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from typing import Any

from aiohttp import web

KEEP_ALIVE = 15.0
QUEUE_LIMIT = 256


class Subscriber:
    def __init__(self) -> None:
        self.items: deque[tuple[str, dict[str, Any]]] = deque()
        self.ready = asyncio.Event()

    def put(self, kind: str, data: dict[str, Any]) -> None:
        if len(self.items) >= QUEUE_LIMIT:
            stale = next((i for i, (k, _) in enumerate(self.items) if k == "progress"), 0)
            del self.items[stale]
        self.items.append((kind, data))
        self.ready.set()


class Hub:
    def __init__(self) -> None:
        self.subscribers: set[Subscriber] = set()
        self.sent = 0
        self.closing = False

    def close(self) -> None:
        """The daemon stops: every stream ends now (a page reconnects to the next daemon by itself)."""
        self.closing = True
        for subscriber in self.subscribers:
            subscriber.ready.set()

    def __repr__(self) -> str:
        return f"Hub(subscribers={len(self.subscribers)}, sent={self.sent})"

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        for subscriber in self.subscribers:
            subscriber.put(kind, data)

    async def stream(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )
        await response.prepare(request)
        me = Subscriber()
        self.subscribers.add(me)
        try:
            await response.write(b"retry: 2000\n\n")
            while not self.closing:
                try:
                    async with asyncio.timeout(KEEP_ALIVE):
                        await me.ready.wait()
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                me.ready.clear()
                if self.closing:
                    break
                batch = []
                while me.items:
                    kind, data = me.items.popleft()
                    batch.append(f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode())
                self.sent += len(batch)
                await response.write(b"".join(batch))
        except (ConnectionError, RuntimeError):
            pass  # the page closed (aiohttp raises RuntimeError writing to a closed transport on some versions)
        finally:
            self.subscribers.discard(me)
        return response
