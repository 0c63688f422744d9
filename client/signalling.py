"""The client's WebSocket to the tracker's swarm: announce what we hold, find friends, carry offers and answers.

It stays connected while it runs, reconnecting with backoff (1 s doubling to
a minute, with jitter, so a restarted tracker is not hit by every client at
once) and announcing again each time. Offers from friends are handed to
`on_offer` in tasks this object owns; news of a published build to `on_news`;
replies to our own requests resolve the futures waiting for them; anything
else (an op from a newer tracker) is skipped. The tracker only relays; the
two clients check each other (tickets, chunk hashes) themselves. A message of
a known op that Mist cannot read is the tracker's breach of the protocol
(TrackerUnreadable): the connection is dropped and made again with backoff.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import secrets
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from client.api import Api, Socket
from client.errors import ClientError, ServerRefused, TrackerUnavailable, TrackerUnreadable
from client.news import News
from client.scheduler import PEER_FLOOR
from client.peerlink import IceServer, PeerGone
from shared.errors import MistError

BACKOFF_FIRST, BACKOFF_MAX = 1.0, 60.0
REPLY_TIMEOUT = 15.0
ANSWER_TIMEOUT = 15.0


class SwarmRefused(ClientError):
    """The tracker refused a swarm request (a game we may not read, a friend who left)."""


@dataclass(frozen=True)
class Friend:
    """An online friend the tracker says holds builds of the game we want."""

    peer: str
    user: str
    builds: tuple[str, ...]
    complete: bool


@dataclass(frozen=True)
class Offer:
    """A friend wants our chunks of `build` (game `game` version `version`) and sent this WebRTC offer."""

    peer: str
    user: str
    session: str
    sdp: str
    build: str
    game: str
    version: str


Announcement = Callable[[], tuple[list[str], bool]]  # (builds held, sharing on)


@contextmanager
def _readable(what: str) -> Iterator[None]:
    """A swarm message whose fields are not what the protocol says is the tracker's breach, said in a sentence."""
    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise TrackerUnreadable(
            f"the tracker's swarm sent a {what} Mist cannot read ({exc.__class__.__name__}: {exc}); "
            "is the tracker of this version?"
        ) from exc


class Signalling:
    def __init__(
        self,
        api: Api,
        on_offer: Callable[[Offer], Awaitable[None]] | None = None,
        announcement: Announcement = lambda: ([], False),
        on_news: Callable[[News], None] | None = None,
        on_sessions_ended: Callable[[list[str]], Awaitable[None]] | None = None,
    ) -> None:
        """`on_sessions_ended` hears the ticket sessions the admin ended (a friend disabled): stop serving them."""
        self.api, self.on_offer, self.announcement, self.on_news = api, on_offer, announcement, on_news
        self.on_sessions_ended = on_sessions_ended
        self.peer_id = ""
        self.ice: tuple[IceServer, ...] = ()  # from the tracker: its admin configures STUN/TURN
        self.seeder_share = 1.0  # from the tracker: how much of a download its seeder gives while friends can
        self.peer_floor = PEER_FLOOR  # from the tracker: how fast friends must be together before that holds
        self._socket: Socket | None = None
        self._connected = asyncio.Event()
        self._ids = itertools.count(1)
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._answers: dict[str, asyncio.Future[str]] = {}
        self.failures = 0
        self.last_error = ""

    def __repr__(self) -> str:
        return f"Signalling(peer={self.peer_id[:8] or None}, connected={self.connected}, failures={self.failures})"

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def run(self, forever: bool = True) -> None:
        """Stay connected (or, with forever=False, return after the first connection ends or fails)."""
        async with asyncio.TaskGroup() as offers:
            while True:
                try:
                    await self._session(offers)
                    self.failures = 0
                    self.last_error = "the tracker closed the connection (restarting?)"
                except ServerRefused as exc:
                    if exc.status in (401, 403):
                        raise
                    self.last_error = str(exc)
                except (TrackerUnavailable, OSError) as exc:
                    self.last_error = str(exc)
                self._disconnected()
                if not forever:
                    return
                self.failures += 1
                delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** min(self.failures - 1, 10))
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))

    async def wait_connected(self, timeout: float) -> bool:
        try:
            async with asyncio.timeout(timeout):
                await self._connected.wait()
        except TimeoutError:
            return False
        return True

    async def _session(self, offers: asyncio.TaskGroup) -> None:
        socket = await self.api.socket("/api/swarm")
        try:
            welcome = await socket.receive()
            if not welcome or welcome.get("op") != "welcome":
                raise TrackerUnavailable("the tracker's swarm did not greet us; is it an older version?")
            served = welcome.get("public_key")
            if isinstance(served, str) and served != self.api.public_key:
                # Follow a rotation now rather than at the next refresh; a key that nothing signed by ours vouches
                # for raises KeyHandoverError, which ends the session (the app shows its "key changed" screen).
                await self.api.follow_key()
            with _readable("welcome"):
                self.peer_id = str(welcome["peer"])
                self.ice = tuple(
                    IceServer(tuple(s["urls"]), s.get("username", ""), s.get("credential", "")) for s in welcome.get("ice", [])
                )
                self.seeder_share = float(welcome.get("seeder_share", 1.0))
            self._socket = socket
            floor = welcome.get("peer_floor")
            if isinstance(floor, int) and not isinstance(floor, bool) and 0 <= floor <= 10**10:
                self.peer_floor = float(floor)
            self._connected.set()
            offers.create_task(self._guarded(self.announce()))  # a drop while announcing ends the session, not run()
            while (message := await socket.receive()) is not None:
                self._dispatch(message, offers)
        finally:
            await socket.close()

    def _disconnected(self) -> None:
        self._connected.clear()
        self._socket = None
        gone = TrackerUnavailable("the connection to the tracker dropped")
        waiting: list[asyncio.Future[Any]] = [*self._replies.values(), *self._answers.values()]
        for future in waiting:
            if not future.done():
                future.set_exception(gone)
        self._replies.clear()
        self._answers.clear()

    def _dispatch(self, message: dict[str, Any], offers: asyncio.TaskGroup) -> None:
        if message.get("op") == "sessions-ended":
            ended = message.get("sessions")
            if isinstance(ended, list) and self.on_sessions_ended is not None:
                offers.create_task(self._guarded(self.on_sessions_ended([str(s)[:64] for s in ended[:10_000]])))
            return
        if message.get("op") == "news":
            news = News.parse(message)
            if news is not None and self.on_news is not None:
                self.on_news(news)
                if news.news_id is not None:
                    offers.create_task(self._heard(news.news_id))
            return
        if message.get("op") == "signal":
            kind, session = message.get("kind"), str(message.get("session", ""))
            if kind == "offer" and self.on_offer is not None:
                with _readable("offer"):
                    offer = Offer(
                        str(message["from"]),
                        str(message.get("user", "")),
                        session,
                        str(message.get("sdp", "")),
                        str(message.get("build", "")),
                        str(message.get("game", "")),
                        str(message.get("version", "")),
                    )
                offers.create_task(self._guarded(self.on_offer(offer)))
            elif kind in ("answer", "refuse") and session in self._answers:
                future = self._answers.pop(session)
                if not future.done():
                    if kind == "answer":
                        future.set_result(str(message.get("sdp", "")))
                    else:
                        future.set_exception(PeerGone(f"the friend declined ({message.get('sdp') or 'busy'})"))
            return
        request_id = message.get("id")
        reply = self._replies.pop(request_id, None) if isinstance(request_id, int) else None
        if reply is not None and not reply.done():
            reply.set_result(message)

    @staticmethod
    async def _guarded(work: Awaitable[None]) -> None:
        """One friend's failure never ends the others' sessions nor our connection."""
        try:
            await work
        except (MistError, OSError, ValueError):
            pass

    async def request(self, body: dict[str, Any]) -> dict[str, Any]:
        """Send a request and wait for its reply; SwarmRefused for an error reply."""
        if self._socket is None:
            raise TrackerUnavailable("not connected to the tracker's swarm")
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[request_id] = future
        await self._socket.send({**body, "id": request_id})
        try:
            async with asyncio.timeout(REPLY_TIMEOUT):
                reply = await future
        except TimeoutError:
            raise TrackerUnavailable("the tracker did not answer a swarm request in time") from None
        finally:
            self._replies.pop(request_id, None)
        if reply.get("op") == "error":
            raise SwarmRefused(str(reply.get("error")))
        return reply

    async def announce(self) -> None:
        builds, sharing = self.announcement()
        await self.request({"op": "announce", "builds": builds, "sharing": sharing})

    async def find(self, game: str, version: str) -> list[Friend]:
        reply = await self.request({"op": "find", "game": game, "version": version})
        with _readable("list of friends"):
            return [
                Friend(str(p["peer"]), str(p["user"]), tuple(map(str, p["builds"])), bool(p["complete"])) for p in reply["peers"]
            ]

    async def offer(self, peer: str, build: str, sdp: str) -> str:
        """Send our offer to a friend and return the friend's answer (PeerGone if it left or declined)."""
        session = secrets.token_hex(12)
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._answers[session] = future
        try:
            reply = await self.request(
                {"op": "signal", "kind": "offer", "to": peer, "session": session, "sdp": sdp, "build": build}
            )
            if reply.get("op") == "gone":
                raise PeerGone("the friend went offline")
            async with asyncio.timeout(ANSWER_TIMEOUT):
                return await future
        except TimeoutError:
            raise PeerGone(f"the friend did not answer within {ANSWER_TIMEOUT:.0f} s") from None
        finally:
            self._answers.pop(session, None)

    async def answer(self, offer: Offer, sdp: str) -> None:
        await self.request({"op": "signal", "kind": "answer", "to": offer.peer, "session": offer.session, "sdp": sdp})

    async def refuse(self, offer: Offer, why: str) -> None:
        await self.request({"op": "signal", "kind": "refuse", "to": offer.peer, "session": offer.session, "sdp": why})

    async def _heard(self, news_id: int) -> None:
        """Tell the tracker we have the news, so it stops keeping it for us; if this is lost, it is told again."""
        try:
            await self.request({"op": "heard", "news": [news_id]})
        except (TrackerUnavailable, SwarmRefused):
            pass

    async def report(self, peer: str, build: str, reason: str) -> None:
        """Tell the tracker a friend sent a corrupt chunk (the admin sees it); best effort."""
        try:
            await self.request({"op": "report", "peer": peer, "build": build, "reason": reason})
        except (TrackerUnavailable, SwarmRefused):
            pass
