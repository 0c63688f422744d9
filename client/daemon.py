"""`mist daemon`: keeps this client online, so friends can download from it, and runs installs for the CLI.

It holds one WebSocket to the tracker (reconnecting with backoff), announces
the builds installed here, and answers friends' offers by serving chunks from
the installed files within the user's sharing settings (re-read every few
seconds, so `mist share` takes effect at once). Its local API listens on
loopback only; every call needs the token written with its address into
MIST_HOME/daemon.json (mode 0600), so other users and web pages cannot use it.
`mist install` and `mist update` hand their work to a running daemon, which
already has friends connected and announces the new build when it is done.
News from the tracker (a build published) goes to its stderr and `mist status`.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from client import peerlink, process, sharing_settings
from client.api import Api
from client.errors import NotConfirmed, ServerRefused
from client.installer import Installer
from client.news import Feed, News
from client.peerwire import DEFAULT_WINDOW
from client.ratelimit import CAP_BURST, TokenBucket
from client.sharing import Library, Uploads, serve
from client.daemon_address import DAEMON_FILE, Address, write_address
from client.sharing_settings import Sharing, caps_now, load_settings
from client.signalling import Offer, Signalling
from client.state import State
from client.swarm import Peers
from shared.errors import MistError

SETTINGS_POLL = 1.0


@dataclass
class Daemon:
    home: Path
    api: Api
    state: State
    settings: Sharing = field(default_factory=Sharing)
    started: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        self.library = Library(self.state, self.api)
        upload, download = caps_now(self.settings)
        self.uploads = Uploads(TokenBucket(upload, CAP_BURST))
        self.download = TokenBucket(download, CAP_BURST)
        self.signalling = Signalling(self.api, on_offer=self.accept, announcement=self.announcement, on_news=self.hear,
                                     on_sessions_ended=self.uploads.end)
        self.news = Feed()
        self.token = secrets.token_urlsafe(24)
        self.busy = asyncio.Lock()  # one install or update at a time, like the CLI's folder lock
        self.running: StreamProgress | None = None  # the CLI whose install or update runs here now
        printed = self.api.on_key_change

        def key_changed(notice: str) -> None:
            """Said on the daemon's stderr, and to the CLI whose run made us notice."""
            printed(notice)
            if self.running is not None:
                self.running.say(notice)

        self.api.on_key_change = key_changed

    def __repr__(self) -> str:
        return f"Daemon(home={str(self.home)!r}, {self.signalling!r}, {self.uploads!r})"

    def announcement(self) -> tuple[list[str], bool]:
        return self.library.held_builds(), self.settings.enabled

    def peers(self) -> Peers:
        return Peers(self.signalling, max_peers=self.settings.max_peers, download=self.download)

    async def accept(self, offer: Offer) -> None:
        """A friend's offer: answer it and serve, or decline (sharing off, too many friends, unknown build)."""
        if not self.settings.enabled or len(self.uploads.sessions) >= self.settings.max_peers:
            await self.signalling.refuse(offer, "sharing is off" if not self.settings.enabled else "busy")
            return
        try:
            await self.library.learn(offer.build, offer.game, offer.version)
        except (MistError, OSError) as exc:
            await self.signalling.refuse(offer, f"cannot serve that build ({exc})")
            return
        answering, sdp = await peerlink.answer(offer.sdp, self.signalling.ice)
        try:
            await self.signalling.answer(offer, sdp)
            link = await answering.link()
        except BaseException:
            await answering.close()
            raise
        await serve(link, self.library, self.api, self.uploads, offer.session, offer.user,
                    offer.build, offer.game, DEFAULT_WINDOW)

    def hear(self, news: News) -> None:
        """Keep the news for `mist status` and say it on stderr, where a terminal running the daemon shows it."""
        self.news.add(news)
        try:
            print(f"mist daemon: news: {news.text}", file=sys.stderr, flush=True)
        except (OSError, ValueError):
            pass  # nobody reads our stderr any more; `mist status` still has it

    async def refresh(self) -> None:
        """Installs changed: serve what is installed now, and tell the tracker."""
        await asyncio.to_thread(self.library.refresh)
        if self.signalling.connected:
            await self.signalling.announce()

    async def watch_settings(self) -> None:
        while True:
            await asyncio.sleep(SETTINGS_POLL)
            try:
                fresh = await asyncio.to_thread(load_settings, self.home)
            except MistError:
                continue  # a half-edited file: keep the last good settings
            changed = fresh != self.settings
            self.settings = fresh
            upload, download = caps_now(fresh)
            now = self.uploads.clock()
            if upload != self.uploads.bucket.rate:
                self.uploads.bucket.set_rate(upload, now)
            if download != self.download.rate:
                self.download.set_rate(download, now)
            if changed and self.signalling.connected:
                await self.signalling.announce()

    def status(self) -> dict[str, Any]:
        upload, download = caps_now(self.settings)
        return {
            "pid": os.getpid(), "since": self.started, "connected": self.signalling.connected,
            "peer_id": self.signalling.peer_id, "tracker_error": self.signalling.last_error if not self.signalling.connected else "",
            "sharing": sharing_settings.to_json(self.settings), "upload_cap_now": upload, "download_cap_now": download,
            "builds_shared": self.library.held_builds(), "bytes_uploaded": self.uploads.sent,
            "peers": [{"user": v.user, "game": v.game, "since": v.started, "chunks": v.chunks, "bytes": v.bytes}
                      for v in self.uploads.sessions.values()],
            "news": self.news.to_json(),
        }

    async def run(self, port: int, on_ready: Callable[[Address], None] = lambda a: None) -> None:
        await asyncio.to_thread(self.library.refresh)
        runner = web.AppRunner(local_api(self), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        bound = runner.addresses[0][1]
        address = Address(f"http://127.0.0.1:{bound}", self.token, os.getpid())
        write_address(self.home, address)
        on_ready(address)
        stop = asyncio.Event()
        undo = process.on_stop(asyncio.get_running_loop(), stop.set)  # a service manager's stop: clean up like Ctrl-C
        try:
            async with asyncio.TaskGroup() as group:
                work = [group.create_task(self.signalling.run()), group.create_task(self.watch_settings())]
                await stop.wait()
                for task in work:
                    task.cancel()
        finally:
            undo()
            (self.home / DAEMON_FILE).unlink(missing_ok=True)
            await runner.cleanup()


# ---- the local API -----------------------------------------------------------------------------------

DAEMON = web.AppKey("daemon", Daemon)


@web.middleware
async def _guard(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """Only this user's mist commands: the token from daemon.json, and no request a web page could make."""
    daemon = request.app[DAEMON]
    if request.headers.get("Origin") or request.headers.get("Authorization") != f"Bearer {daemon.token}":
        return web.json_response({"error": "this is mist's local API; use the mist command"}, status=403)
    return await handler(request)


async def _status(request: web.Request) -> web.Response:
    return web.json_response(request.app[DAEMON].status())


async def _refresh(request: web.Request) -> web.Response:
    await request.app[DAEMON].refresh()
    return web.json_response({"builds_shared": request.app[DAEMON].library.held_builds()})


async def _run(request: web.Request) -> web.StreamResponse:
    """Run an install or update here and stream its progress, then its outcome, as JSON lines."""
    daemon = request.app[DAEMON]
    body = await request.json()
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await response.prepare(request)
    progress = StreamProgress()
    sender = asyncio.create_task(progress.pump(response))
    try:
        async with daemon.busy:
            daemon.running = progress
            try:
                yes = bool(body.get("yes"))
                installer = Installer(daemon.api, daemon.state, progress, daemon.peers(), confirm=lambda why: yes)
                if body.get("op") == "install":
                    outcome = await installer.install(body["game"], Path(body["dir"]), body.get("version"), bool(body.get("overwrite")))
                elif body.get("op") == "update":
                    outcome = await installer.converge(body["game"], body.get("to"), bool(body.get("overwrite")))
                else:
                    raise MistError(f"unknown op {body.get('op')!r}")
            finally:
                daemon.running = None
        progress.put({"result": outcome.to_json()})
    except NotConfirmed as exc:
        progress.put({"error": str(exc), "confirm": exc.why})  # the CLI may ask its person, and send "yes"
    except ServerRefused as exc:
        progress.put({"error": str(exc), "status": exc.status})
    except (MistError, OSError) as exc:
        progress.put({"error": str(exc) if isinstance(exc, MistError) else f"{exc.strerror or exc} ({exc.filename})"})
    finally:
        progress.put(None)
        await sender
        await daemon.refresh()
    return response


def local_api(daemon: Daemon) -> web.Application:
    app = web.Application(middlewares=[_guard])
    app[DAEMON] = daemon
    app.add_routes([web.get("/api/status", _status), web.post("/api/refresh", _refresh), web.post("/api/run", _run)])
    return app


class StreamProgress:
    """Progress for a CLI on the other end of the local API: bars and messages as JSON lines."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._bars = 0

    def put(self, item: dict[str, Any] | None) -> None:
        self._queue.put_nowait(item)

    def bar(self, description: str, total: int) -> "_StreamBar":
        self._bars += 1
        self.put({"bar": self._bars, "description": description, "total": total})
        return _StreamBar(self, self._bars)

    def say(self, message: str) -> None:
        self.put({"say": message})

    def __enter__(self) -> "StreamProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    async def pump(self, response: web.StreamResponse) -> None:
        """Write what was put, a batch per wake-up, until None (the end)."""
        done = False
        while not done:
            batch = [await self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            if None in batch:
                done, batch = True, batch[: batch.index(None)]
            try:
                await response.write(b"".join(json.dumps(i).encode() + b"\n" for i in batch))
            except ConnectionError:
                pass  # the CLI went away; the work goes on and is recorded


class _StreamBar:
    def __init__(self, progress: StreamProgress, number: int) -> None:
        self._progress, self._number = progress, number

    def advance(self, amount: int) -> None:
        self._progress.put({"advance": self._number, "bytes": amount})
