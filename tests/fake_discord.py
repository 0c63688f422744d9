"""A fake Discord webhook for tests: a real aiohttp server on loopback that answers the way Discord does.

It knows one webhook, `/api/webhooks/{ID}/{TOKEN}`; any other path is 404
Unknown Webhook. A post is checked as Discord checks it (JSON with a
`content` of 1-2000 characters, else 400 with Discord's error JSON), recorded
with the time it came, and answered with the next scripted reply, or 204 No
Content once the script is used up. A 429 carries `Retry-After` and a JSON
`retry_after`, as Discord's do. The server runs on its own thread and loop,
so tests that call blocking commands can use it too.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

ID, TOKEN = "1234567890", "a-secret-token"


@dataclass(frozen=True)
class Reply:
    status: int
    retry_after: float | None = None  # for 429
    in_header: bool = True
    in_body: bool = True


def rate_limited(seconds: float, in_header: bool = True, in_body: bool = True) -> Reply:
    return Reply(429, seconds, in_header, in_body)


@dataclass(frozen=True)
class Post:
    at: float  # time.monotonic() when it arrived
    path: str
    body: Any
    headers: dict[str, str]


@dataclass
class FakeDiscord:
    port: int = 0
    posts: list[Post] = field(default_factory=list)
    _script: deque[Reply] = field(default_factory=deque)
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/webhooks/{ID}/{TOKEN}"

    def script(self, *replies: Reply) -> None:
        """Answer the next posts with these, then with 204 again; forget the posts seen so far."""
        with self._arrived:
            self._script = deque(replies)
            self.posts = []

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Post]:
        """Block until `count` posts have come (the posts), or fail saying how many did."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.posts) >= count, timeout):
                raise AssertionError(f"the fake Discord got {len(self.posts)} post(s), expected {count}: {self.posts}")
            return list(self.posts)

    async def _webhook(self, request: web.Request) -> web.Response:
        raw = await request.read()
        arrived = time.monotonic()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        with self._arrived:
            self.posts.append(Post(arrived, request.path, body, dict(request.headers)))
            reply = self._script.popleft() if self._script else Reply(204)
            self._arrived.notify_all()
        if request.match_info["id"] != ID or request.match_info["token"] != TOKEN:
            return web.json_response({"message": "Unknown Webhook", "code": 10015}, status=404)
        content = body.get("content") if isinstance(body, dict) else None
        if not isinstance(content, str) or not 0 < len(content) <= 2000:
            return web.json_response({"message": "Cannot send an empty message", "code": 50006}, status=400)
        if reply.status == 429:
            headers = {"Retry-After": str(reply.retry_after)} if reply.in_header else {}
            obj: dict[str, Any] = {"message": "You are being rate limited.", "global": False}
            if reply.in_body:
                obj["retry_after"] = reply.retry_after
            return web.json_response(obj, status=429, headers=headers)
        if reply.status == 204:
            return web.Response(status=204)
        if reply.status >= 500:
            return web.Response(status=reply.status, text=f"{reply.status}: Internal Server Error")
        return web.json_response({"message": "Unknown Webhook", "code": 10015}, status=reply.status)

    def __enter__(self) -> "FakeDiscord":
        app = web.Application()
        app.router.add_post("/api/webhooks/{id}/{token}", self._webhook)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-discord", daemon=True)
        self._thread.start()
        self._runner = web.AppRunner(app, access_log=None)

        async def start() -> int:
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", self.port)
            await site.start()
            return int(self._runner.addresses[0][1])

        self.port = asyncio.run_coroutine_threadsafe(start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
