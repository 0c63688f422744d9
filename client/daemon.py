"""`mist daemon`: keeps this client online, so friends can download from it, and serves the app and the CLI.

It holds one WebSocket to the tracker (reconnecting with backoff), announces
the builds installed here, and answers friends' offers by serving chunks from
the installed files within the user's sharing settings (re-read every second,
so `mist share` and the app's settings take effect at once). Its local server
(client/app/) listens on loopback only: the app's pages and JSON API for a
browser session, and the same API for the `mist` command with the token
written into MIST_HOME/daemon.json (mode 0600). Installs and updates, from the
app or the CLI, go through one download queue (client/app/downloads.py).

The daemon also runs signed out (no saved login yet, or the session expired):
the app then shows its sign-in screen, and signing in starts the tracker
connection without a restart. It logs as the services do (shared/logs.py: text
lines by default, JSON with MIST_LOG_FORMAT=json) to stderr: the terminal of
`mist daemon`, or MIST_HOME/daemon.log when `mist app` started it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from client import credentials, peerlink, process, sharing_settings
from client.api import Api
from client.credentials import Credentials
from client.daemon_address import DAEMON_FILE, Address, write_address
from client.errors import NotLoggedIn, ServerRefused, TrackerUnavailable
from client.news import Feed, News
from client.peerwire import DEFAULT_WINDOW
from client.ratelimit import CAP_BURST, TokenBucket
from client.sharing import Library, Uploads, serve
from client.sharing_settings import Sharing, caps_now, load_settings
from client.signalling import Offer, Signalling, SwarmRefused
from client.state import State
from client.swarm import Peers
from shared.errors import KeyHandoverError, MistError
from shared.logs import log_to

SETTINGS_POLL = 1.0
TOOL = "mist"
EXPIRED, KEY_CHANGED = "expired", "key-changed"  # why the daemon is signed out, for the app's screens
log = logging.getLogger("mist.daemon")


@dataclass
class Daemon:
    home: Path
    state: State
    settings: Sharing = field(default_factory=Sharing)
    started: float = field(default_factory=time.time)
    api: Api | None = None
    say: Callable[[str], None] = log.info  # what a person watching the daemon should read

    def __post_init__(self) -> None:
        self.library = Library(self.state, self.api)
        upload, download = caps_now(self.settings)
        self.uploads = Uploads(TokenBucket(upload, CAP_BURST))
        self.download = TokenBucket(download, CAP_BURST)
        self.signalling: Signalling | None = None
        self.news = Feed()
        self.token = secrets.token_urlsafe(24)
        self.signed_out_because = ""  # EXPIRED or KEY_CHANGED once the tracker refused our session
        self.key_notice = ""
        self.listeners: list[Callable[[str, dict[str, Any]], None]] = []  # the app's event stream
        self._online: asyncio.Task[None] | None = None
        self._group: asyncio.TaskGroup | None = None
        if self.api is not None:
            self._adopt(self.api)

    def __repr__(self) -> str:
        return f"Daemon(home={str(self.home)!r}, {self.signalling!r}, {self.uploads!r})"

    # ---- the session with the tracker ----------------------------------------------------------------

    def _adopt(self, api: Api) -> None:
        self.api = api
        self.library.api = api
        printed = api.on_key_change

        def key_changed(notice: str) -> None:
            printed(notice)
            self.key_notice = notice
            self.tell("key", {"notice": notice})

        api.on_key_change = key_changed
        self.signalling = Signalling(
            api, on_offer=self.accept, announcement=self.announcement, on_news=self.hear, on_sessions_ended=self.uploads.end
        )

    def resume(self, creds: Credentials) -> None:
        """Go online (when `run` starts) with the login saved earlier."""
        self._adopt(self.open_api(creds))

    def open_api(self, creds: Credentials) -> Api:
        return Api(creds, on_refresh=lambda c: credentials.save(self.home, TOOL, c), on_key_change=self.say)

    async def sign_in(self, creds: Credentials) -> str:
        """Use a fresh login (already made against the tracker): save it, and go online with it. Where it went."""
        await self.sign_out(forget=False)
        where = await asyncio.to_thread(credentials.save, self.home, TOOL, creds, True)
        self._adopt(self.open_api(creds))
        self.signed_out_because = self.key_notice = ""
        self._go_online()
        self.tell("account", {"signed_in": True})
        return where

    async def sign_out(self, forget: bool = True) -> None:
        if self._online is not None:
            self._online.cancel()
            await asyncio.wait([self._online])
            self._online = None
        if self.api is not None:
            await self.api.__aexit__(None, None, None)
        self.api = self.library.api = None
        self.signalling = None
        if forget:
            await asyncio.to_thread(credentials.forget, self.home, TOOL)
            self.tell("account", {"signed_in": False})

    def _go_online(self) -> None:
        if self._group is not None and self.signalling is not None:
            self._online = self._group.create_task(self._stay_online(self.signalling))

    async def _stay_online(self, signalling: Signalling) -> None:
        try:
            await signalling.run()  # its task group hands its errors on in a group
        except* ServerRefused as refused:  # 401/403: the session is over (expired, password changed, disabled)
            self.signed_out_because = EXPIRED
            self.say(f"signed out: {refused.exceptions[0]}")
        except* KeyHandoverError as changed:
            self.signed_out_because = KEY_CHANGED
            self.key_notice = str(changed.exceptions[0])
            self.say(f"signed out: {self.key_notice}")
        self.tell("account", {"signed_in": False, "why": self.signed_out_because})

    @property
    def signed_in(self) -> bool:
        return self.api is not None and not self.signed_out_because

    def need_api(self) -> Api:
        if self.api is None or self.signed_out_because:
            raise NotLoggedIn("not signed in; sign in in the app (`mist app`) or run `mist login`")
        return self.api

    # ---- friends -------------------------------------------------------------------------------------

    def announcement(self) -> tuple[list[str], bool]:
        return self.library.held_builds(), self.settings.enabled

    def peers(self) -> Peers | None:
        if self.signalling is None:
            return None
        return Peers(self.signalling, max_peers=self.settings.max_peers, download=self.download)

    async def accept(self, offer: Offer) -> None:
        """A friend's offer: answer it and serve, or decline (sharing off, too many friends, unknown build)."""
        signalling, api = self.signalling, self.api
        if signalling is None or api is None:
            return
        if not self.settings.enabled or len(self.uploads.sessions) >= self.settings.max_peers:
            await signalling.refuse(offer, "sharing is off" if not self.settings.enabled else "busy")
            return
        try:
            await self.library.learn(offer.build, offer.game, offer.version)
        except (MistError, OSError) as exc:
            await signalling.refuse(offer, f"cannot serve that build ({exc})")
            return
        answering, sdp = await peerlink.answer(offer.sdp, signalling.ice)
        try:
            await signalling.answer(offer, sdp)
            link = await answering.link()
        except BaseException:
            await answering.close()
            raise
        await serve(
            link,
            self.library,
            api,
            self.uploads,
            offer.session,
            offer.user,
            offer.build,
            offer.game,
            DEFAULT_WINDOW,
            report=lambda reason: signalling.report(offer.peer, offer.build, reason),
        )

    def hear(self, news: News) -> None:
        """Keep the news for `mist status` and the app, and say it on stderr, where a terminal running us shows it."""
        if not self.news.add(news):
            return
        try:
            self.say(f"news: {news.text}")
        except (OSError, ValueError):
            pass  # nobody reads our stderr any more; `mist status` still has it
        self.tell("news", news.to_json())

    def tell(self, kind: str, data: dict[str, Any]) -> None:
        """An event for whoever listens (the app's event stream, notifications)."""
        for listener in list(self.listeners):
            listener(kind, data)

    async def refresh(self) -> None:
        """Installs changed: serve what is installed now, and tell the tracker."""
        await asyncio.to_thread(self.library.refresh)
        if self.signalling is not None and self.signalling.connected:
            try:
                await self.signalling.announce()
            except (TrackerUnavailable, SwarmRefused):
                pass  # the connection dropped: it announces everything again when it is back
        self.tell("installs", {})

    async def apply_settings(self, fresh: Sharing) -> None:
        changed = fresh != self.settings
        self.settings = fresh
        upload, download = caps_now(fresh)
        now = self.uploads.clock()
        if upload != self.uploads.bucket.rate:
            self.uploads.bucket.set_rate(upload, now)
        if download != self.download.rate:
            self.download.set_rate(download, now)
        if changed:
            self.tell("settings", {})
            if self.signalling is not None and self.signalling.connected:
                await self.signalling.announce()

    async def watch_settings(self) -> None:
        while True:
            await asyncio.sleep(SETTINGS_POLL)
            try:
                fresh = await asyncio.to_thread(load_settings, self.home)
            except MistError:
                continue  # a half-edited file: keep the last good settings
            await self.apply_settings(fresh)

    def status(self) -> dict[str, Any]:
        upload, download = caps_now(self.settings)
        signalling = self.signalling
        connected = signalling is not None and signalling.connected
        error = ("not signed in" if signalling is None else signalling.last_error) if not connected else ""
        return {
            "pid": os.getpid(),
            "since": self.started,
            "connected": connected,
            "peer_id": signalling.peer_id if signalling else "",
            "tracker_error": error,
            "sharing": sharing_settings.to_json(self.settings),
            "upload_cap_now": upload,
            "download_cap_now": download,
            "builds_shared": self.library.held_builds(),
            "bytes_uploaded": self.uploads.sent,
            "peers": [
                {"user": v.user, "game": v.game, "since": v.started, "chunks": v.chunks, "bytes": v.bytes}
                for v in self.uploads.sessions.values()
            ],
            "news": self.news.to_json(),
        }

    async def run(self, port: int, on_ready: Callable[[Address], None] = lambda a: None) -> None:
        from client.app.server import LocalServer  # the pages and their dependencies: only the daemon needs them

        await asyncio.to_thread(self.library.refresh)
        stop = asyncio.Event()
        undo = process.on_stop(asyncio.get_running_loop(), stop.set)  # a service manager's stop: clean up like Ctrl-C
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                local = LocalServer(self, stop)
                bound = await local.start(port)
                address = Address(f"http://127.0.0.1:{bound}", self.token, os.getpid())
                write_address(self.home, address)
                on_ready(address)
                work = [group.create_task(self.watch_settings()), group.create_task(local.run())]
                self._go_online()
                await stop.wait()
                for task in work:
                    task.cancel()
                if self._online is not None:
                    self._online.cancel()
                await local.close()
        finally:
            undo()
            self._group = None
            (self.home / DAEMON_FILE).unlink(missing_ok=True)
            if self.api is not None:
                await self.api.__aexit__(None, None, None)


def log_to_stderr(log_format: str) -> None:
    """The daemon's log, in the services' formats (shared/logs.py); the WebRTC libraries' lines for every
    connectivity check are left out (their warnings stay)."""
    log_to(log_format)
    for chatty in ("aioice", "aiortc"):
        logging.getLogger(chatty).setLevel(logging.WARNING)


def saved_login(home: Path) -> Credentials | None:
    """The login `mist login` or the app saved, or None (the daemon starts signed out)."""
    try:
        return credentials.load(home, TOOL)
    except NotLoggedIn:
        return None
