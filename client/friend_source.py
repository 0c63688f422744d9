"""A friend online as a chunk source: a WebRTC link opened through the tracker, the peer wire protocol over it.

`befriend` connects and then reads until the link ends, turning what the
friend says into the download loop's events (client/sources.py); once the
friend is ready, the loop gets a `FriendSource` to send requests through. A
chunk is verified by the wire protocol's reassembly before it becomes an
`Arrived` event; a bad one becomes `Corrupt`, and the loop drops the friend.
A friend that breaks the wire protocol ends its link with `Left` carrying the
PeerProtocolError, which the loop treats like a corrupt chunk (dropped and
reported); a LocalProtocolError is ours, and ends the link without blame.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence

from client import peerlink
from client.errors import TrackerUnavailable
from client.peerlink import PeerGone, PeerLink
from client.peerwire import (
    BUSY,
    Corrupt as WireCorrupt,
    Downloader,
    Have,
    HaveAll,
    Hello,
    PeerProtocolError,
    Received,
    Refused,
    Request as PeerRequest,
)
from shared.errors import LocalProtocolError
from client.scheduler import Kind
from client.signalling import Friend, Signalling, SwarmRefused
from client.sources import Arrived, Corrupt, Event, Failed, Holds, Joined, Left, Missing


class FriendSource:
    """A connected friend: requests go out as wire messages, answers come back through `befriend`'s reader."""

    kind: Kind = "peer"

    def __init__(
        self,
        info: Friend,
        link: PeerLink,
        wire: Downloader,
        events: asyncio.Queue[Event],
        spawn: Callable[[Awaitable[None]], object],
        delay: Callable[[Sequence[str]], float] = lambda hashes: 0.0,
    ) -> None:
        self.info, self.link, self.wire, self.events, self.spawn, self.delay = info, link, wire, events, spawn, delay

    @property
    def id(self) -> str:
        return self.info.peer

    def __repr__(self) -> str:
        return f"FriendSource({self.info.user!r}, {self.wire!r})"

    async def request(self, hashes: Sequence[str]) -> None:
        try:
            messages = [self.wire.request(h) for h in hashes]
        except LocalProtocolError as exc:  # asked past the friend's window: a bug here, and the friend is not blamed
            await self.events.put(Left(self.id, exc))
            await self.link.close()  # the wire's count of what is out is wrong now: this link is done
            return
        wait = self.delay(hashes)
        if wait > 0:
            self.spawn(self._ask_later(messages, wait))  # the loop goes on meanwhile
            return
        await self._ask(messages)

    async def _ask_later(self, messages: list[PeerRequest], wait: float) -> None:
        await asyncio.sleep(wait)
        await self._ask(messages)

    async def _ask(self, messages: list[PeerRequest]) -> None:
        try:
            for message in messages:
                await self.link.send(message)
        except PeerGone as exc:
            await self.events.put(Left(self.id, exc))

    async def cancel(self, sha256: str) -> None:
        try:
            for message in self.wire.cancel(sha256):
                await self.link.send(message)
        except PeerGone as exc:
            await self.events.put(Left(self.id, exc))

    async def close(self) -> None:
        await self.link.close()


def wire_event(peer: str, event: Received | WireCorrupt | Refused) -> Event:
    """The download loop's event for what the wire protocol made of a friend's message."""
    if isinstance(event, Received):
        return Arrived(peer, event.sha256, event.data, event.wire or len(event.data))
    if isinstance(event, WireCorrupt):
        return Corrupt(peer, (event.sha256,))
    if event.reason == BUSY:
        return Failed(peer, (event.sha256,))
    return Missing(peer, (event.sha256,))


async def befriend(
    friend: Friend,
    signalling: Signalling,
    build: str,
    ticket: Callable[[], Awaitable[str]],
    sizes: Mapping[str, int],
    events: asyncio.Queue[Event],
    over: Callable[[], bool],
    links: set[PeerLink],
    spawn: Callable[[Awaitable[None]], object],
    delay: Callable[[Sequence[str]], float],
) -> None:
    """Connect to one friend, then pass on everything it says until the link ends (`Left` when it does).
    Every link made is added to `links`, for the loop to close when the download ends."""
    link: PeerLink | None = None
    offering: peerlink.Offering | None = None
    try:
        offering, sdp = await peerlink.offer(signalling.ice)
        answer = await signalling.offer(friend.peer, build, sdp)
        link = await offering.complete(answer)
        if over():
            return  # the download ended while we connected (the finally closes the link)
        links.add(link)
        await link.send(Hello(await ticket()))
        wire = Downloader(dict(sizes))
        ready = False
        while True:
            message = await link.receive()
            wire_events = wire.handle(message)
            if isinstance(message, (HaveAll, Have)):
                holds = None if isinstance(message, HaveAll) else message.hashes
                if not ready:
                    ready = True
                    source = FriendSource(friend, link, wire, events, spawn, delay)
                    await events.put(Joined(source, None if holds is None else frozenset(holds), wire.window))
                elif holds is not None:
                    await events.put(Holds(friend.peer, tuple(holds)))
            for event in wire_events:
                await events.put(wire_event(friend.peer, event))
    except (PeerGone, PeerProtocolError, LocalProtocolError, SwarmRefused, TrackerUnavailable, OSError) as exc:
        await events.put(Left(friend.peer, exc))  # the loop tells whose fault it was by the error
    finally:
        if link is not None:
            await link.close()
        elif offering is not None:
            await offering.close()
