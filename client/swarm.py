"""Downloading chunks from the seeder and online friends at once, as the scheduler decides.

The scheduler (pure) says which chunks to ask of whom; this module carries it
out: HTTP batches to the seeder, peer wire requests to each friend over a
WebRTC link opened through the tracker's signalling. Every chunk is verified
before a byte is written: a seeder chunk here (`fetch.check_and_write`), a
friend's in the wire protocol's reassembly. A friend who sends one bad chunk
is dropped for this download and reported to the tracker; a friend who
vanishes or never connects costs nothing but time, and its pieces go elsewhere.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from client import crashpoints, peerlink
from client.api import Api
from client.errors import DownloadFailed, ServerRefused, TrackerUnavailable
from client.fetch import Seeder, Targets, check_and_write, corrupt_chunk, missing_chunk
from client.peerlink import PeerGone, PeerLink
from client.peerwire import (BUSY, Corrupt, Downloader, Have, HaveAll, Hello, PeerProtocolError, Received, Refused,
                             Request as PeerRequest)
from client.progress import Bar
from client.ratelimit import CAP_BURST, TokenBucket
from client.scheduler import PEER_FLOOR, Request, Scheduler
from client.signalling import Friend, Signalling, SwarmRefused
from client.staging import write_at
from shared import pack
from shared.errors import MistError, PackError
from shared.wording import count

SEEDER = "seeder"
CONNECT_GRACE = 3.0  # the seeder is held back this long at most while friends are being connected
IDLE_WAKE = 1.0


@dataclass
class Peers:
    """How this client reaches friends: the signalling connection, ICE servers, caps."""

    signalling: Signalling  # also carries the tracker's ICE servers and seeder share
    max_peers: int = 8
    download: TokenBucket | None = None
    # Bytes received so far, live, by source: each friend's user name, and SEEDER (the app shows them as they come).
    received: dict[str, int] = field(default_factory=dict)

    def count(self, source: str, amount: int) -> None:
        self.received[source] = self.received.get(source, 0) + amount


@dataclass
class Tally:
    """What one download received, by source kind, and wrote."""

    from_seeder: int = 0
    from_peers: int = 0
    chunks_from_peers: int = 0
    written: int = 0
    peers_used: int = 0
    peers_dropped: dict[str, str] = field(default_factory=dict)  # friend's user -> why


@dataclass(eq=False)
class _Friend:
    info: Friend
    link: PeerLink
    wire: Downloader


class _Download:
    def __init__(self, api: Api, seeder: Seeder, sizes: dict[str, int], targets: Targets, bar: Bar,
                 on_written: Callable[[list[Path]], None], peers: Peers | None, build: str) -> None:
        self.api, self.seeder, self.sizes, self.targets = api, seeder, sizes, targets
        self.bar, self.on_written, self.peers, self.build = bar, on_written, peers, build
        self.sched = Scheduler(sizes, seeder_share=peers.signalling.seeder_share if peers else 1.0,
                               peer_floor=peers.signalling.peer_floor if peers else PEER_FLOOR)
        self.sched.add_source(SEEDER, None, "seeder")
        self.events: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self.friends: dict[str, _Friend] = {}
        self.dialing: dict[str, asyncio.Task[None]] = {}  # friends being connected to
        self.links: set[PeerLink] = set()  # every link made, ready or not: closed when the download ends
        self.over = False
        self.group: asyncio.TaskGroup | None = None  # the tasks of this download, while it runs
        self.tally = Tally()
        self.seeder_error: Exception | None = None
        self.seeder_missing: set[str] = set()
        self.seeder_corrupt: set[str] = set()
        self.clock = time.monotonic

    def __repr__(self) -> str:
        return f"<download {self.sched!r}, connecting {len(self.dialing)}>"

    async def run(self, friends: list[Friend]) -> Tally:
        async with asyncio.TaskGroup() as group:
            self.group = group
            try:
                for friend in friends:
                    self.dialing[friend.peer] = group.create_task(self._befriend(friend))
                self.sched.expect_peers(len(self.dialing))
                await self._loop(group, self.clock() + CONNECT_GRACE)
            finally:  # done, or failed: the group waits for every friend's task, so each must end
                await self._end_links()
        self.tally.peers_dropped = {self.friends[p].info.user: why for p, why in self.sched.dropped.items() if p in self.friends}
        return self.tally

    async def _end_links(self) -> None:
        """Stop connecting, and close every link: that ends its reader. Closing, not only cancelling, also ends
        a task that lost its cancel: Python 3.11's wait_for returns a result that arrived together with the
        cancel and drops the cancel. Our own waits use asyncio.timeout, which does not; aiortc's DTLS
        handshake still uses wait_for."""
        self.over = True
        for task in self.dialing.values():
            task.cancel()
        for link in list(self.links):
            await link.close()

    async def _loop(self, group: asyncio.TaskGroup, grace_ends: float) -> None:
        while not self.sched.done:
            now = self.clock()
            if now >= grace_ends:
                self.sched.expect_peers(0)
            for cancel in self.sched.expire(now):
                await self._cancel(cancel.source_id, cancel.hash)
            for request in self.sched.plan(now):
                await self._send(group, request)
            if self.sched.done:
                break
            self._fail_if_stuck()
            wake = self.sched.wake_at(now)
            timeout = IDLE_WAKE if wake is None else min(IDLE_WAKE, max(0.0, wake - now))
            if now < grace_ends:
                timeout = min(timeout, grace_ends - now)
            try:
                async with asyncio.timeout(timeout):
                    event = await self.events.get()
            except TimeoutError:
                continue
            await self._handle(event)
            while not self.events.empty():
                await self._handle(self.events.get_nowait())

    def _fail_if_stuck(self) -> None:
        stuck = self.sched.stuck()
        if not stuck or self.dialing:
            return
        first = stuck[0]
        if first in self.seeder_missing:
            raise missing_chunk(first)
        if first in self.seeder_corrupt:
            raise corrupt_chunk(len(stuck), first)
        if self.seeder_error is not None:
            raise self.seeder_error
        raise DownloadFailed(f"{count(len(stuck), 'chunk')} could not be had from the seeder or any friend (first {first[:12]})")

    # ---- the seeder ---------------------------------------------------------------------------------

    async def _send(self, group: asyncio.TaskGroup, request: Request) -> None:
        if request.source_id == SEEDER:
            group.create_task(self._from_seeder(list(request.hashes)))
            return
        friend = self.friends.get(request.source_id)
        if friend is None:
            return
        try:
            messages = []
            for h in request.hashes:
                if friend.wire.free == 0:
                    raise PeerProtocolError("window full")
                messages.append(friend.wire.request(h))
        except PeerProtocolError:
            self.sched.remove_source(request.source_id)
            return
        delay = self._download_delay(request.hashes)
        if delay > 0:
            group.create_task(self._ask_later(friend, messages, delay))  # the loop goes on meanwhile
            return
        await self._ask(friend, messages)

    async def _ask_later(self, friend: _Friend, messages: list[PeerRequest], delay: float) -> None:
        await asyncio.sleep(delay)
        await self._ask(friend, messages)

    async def _ask(self, friend: _Friend, messages: list[PeerRequest]) -> None:
        try:
            for message in messages:
                await friend.link.send(message)
        except PeerGone:
            self.sched.remove_source(friend.info.peer)

    def _download_delay(self, hashes: tuple[str, ...] | list[str]) -> float:
        """The user's download cap: how long to wait before asking for these chunks (0: at once)."""
        if self.peers is None or self.peers.download is None:
            return 0.0
        return self.peers.download.delay(sum(self.sizes[h] for h in hashes), self.clock())

    async def _from_seeder(self, hashes: list[str]) -> None:
        delay = self._download_delay(hashes)
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            body = await self.api.seeder(f"{self.seeder.url}/fetch", await self.seeder.ticket(), pack.encode_hashes(hashes),
                                         pack.answer_bound(self.sizes[h] for h in hashes))
        except ServerRefused as exc:
            if exc.status < 500:
                raise  # the ticket or the request is wrong: no retry would help
            await self.events.put(("seeder-failed", hashes, exc))
            return
        except (TrackerUnavailable, PackError) as exc:  # unreachable, or an answer too large or malformed: retry
            await self.events.put(("seeder-failed", hashes, exc))
            return
        try:
            answer = await asyncio.to_thread(check_and_write, body, hashes, self.sizes, self.targets)
        except PackError as exc:
            await self.events.put(("seeder-failed", hashes, exc))
            return
        await self.events.put(("seeder", answer, len(body)))
        crashpoints.reach("fetched-batch")

    # ---- friends ------------------------------------------------------------------------------------

    async def _befriend(self, friend: Friend) -> None:
        """Connect to one friend, then pass on everything it says until the link ends."""
        assert self.peers is not None
        link: PeerLink | None = None
        offering: peerlink.Offering | None = None
        try:
            offering, sdp = await peerlink.offer(self.peers.signalling.ice)
            answer = await self.peers.signalling.offer(friend.peer, self.build, sdp)
            link = await offering.complete(answer)
            if self.over:
                return  # the download ended while we connected (the finally closes the link)
            self.links.add(link)
            await link.send(Hello(await self.seeder.ticket()))
            wire = Downloader(dict(self.sizes))
            ready = False
            while True:
                message = await link.receive()
                events = wire.handle(message)
                if isinstance(message, (HaveAll, Have)):
                    holds = None if isinstance(message, HaveAll) else message.hashes
                    if not ready:
                        ready = True
                        await self.events.put(("ready", _Friend(friend, link, wire), holds))
                    elif holds is not None:
                        await self.events.put(("have", friend.peer, holds))
                for event in events:
                    await self.events.put(("peer", friend.peer, event))
        except (PeerGone, PeerProtocolError, SwarmRefused, TrackerUnavailable, OSError) as exc:
            await self.events.put(("gone", friend.peer, exc))
        finally:
            if link is not None:
                await link.close()
            elif offering is not None:
                await offering.close()

    async def _cancel(self, source_id: str, h: str) -> None:
        friend = self.friends.get(source_id)
        if friend is None:
            return
        try:
            for message in friend.wire.cancel(h):
                await friend.link.send(message)
        except PeerGone:
            self.sched.remove_source(source_id)

    # ---- events -------------------------------------------------------------------------------------

    async def _handle(self, event: tuple[Any, ...]) -> None:
        kind, now = event[0], self.clock()
        if kind == "seeder":
            answer, received = event[1], event[2]
            self.tally.from_seeder += received
            if self.peers is not None:
                self.peers.count(SEEDER, received)
            fresh = []
            for h in answer.written:
                receipt = self.sched.received(SEEDER, h, now, answer.wire[h])
                for cancel in receipt.cancel:
                    await self._cancel(cancel.source_id, cancel.hash)
                if receipt.fresh:
                    fresh.append(h)
            self._count(fresh)
            # Only the chunks this answer was first with: a file's countdown must not count a position twice
            # (a friend's copy may have come first), or the file would be finished before it is whole.
            self.on_written([path for h in fresh for path, _ in self.targets[h]])
            for h in answer.corrupt:
                self.seeder_corrupt.add(h)
                self.sched.corrupt(SEEDER, h)
            if answer.missing:
                self.seeder_missing.update(answer.missing)
                self.sched.missing(SEEDER, answer.missing)
            if answer.unanswered:
                self.sched.failed(SEEDER, answer.unanswered, now)
        elif kind == "seeder-failed":
            self.seeder_error = event[2]
            self.sched.failed(SEEDER, event[1], now)
            if not self.friends and not self.dialing:
                raise event[2]  # nobody else to ask: say so now, as before there were friends
        elif kind == "ready":
            ready: _Friend = event[1]
            self.dialing.pop(ready.info.peer, None)
            self.sched.expect_peers(len(self.dialing))
            if self.sched.add_source(ready.info.peer, event[2], "peer", max_pieces=ready.wire.window):
                self.friends[ready.info.peer] = ready
                self.tally.peers_used += 1
        elif kind == "have":
            self.sched.update_holdings(event[1], event[2])
        elif kind == "gone":
            self.dialing.pop(event[1], None)
            self.sched.expect_peers(len(self.dialing))
            self.sched.remove_source(event[1])
        elif kind == "peer":
            await self._peer_event(event[1], event[2], now)

    async def _peer_event(self, peer: str, event: Received | Corrupt | Refused, now: float) -> None:
        if isinstance(event, Received):
            receipt = self.sched.received(peer, event.sha256, now, event.wire or None)
            for cancel in receipt.cancel:
                await self._cancel(cancel.source_id, cancel.hash)
            if receipt.fresh:
                self.tally.from_peers += event.wire or len(event.data)
                self.tally.chunks_from_peers += 1
                if self.peers is not None and peer in self.friends:
                    self.peers.count(self.friends[peer].info.user, event.wire or len(event.data))
                paths = self.targets[event.sha256]
                await asyncio.to_thread(_write, paths, event.data)
                self._count([event.sha256])
                self.on_written([p for p, _ in paths])
        elif isinstance(event, Corrupt):
            self.sched.corrupt(peer, event.sha256)
            friend = self.friends.get(peer)
            if friend is not None:
                await friend.link.close()
                assert self.peers is not None
                assert self.group is not None
                self.group.create_task(
                    self.peers.signalling.report(peer, self.build, f"sent a corrupt copy of chunk {event.sha256}"))
        elif event.reason == BUSY:
            self.sched.failed(peer, [event.sha256], now)
        else:
            self.sched.missing(peer, [event.sha256])

    def _count(self, fresh: list[str]) -> None:
        size = sum(self.sizes[h] * len(self.targets[h]) for h in fresh)
        self.tally.written += size
        self.bar.advance(sum(self.sizes[h] for h in fresh))


def _write(paths: list[tuple[Path, int]], data: bytes) -> None:
    for path, offset in paths:
        write_at(path, offset, data)


async def download(
    api: Api, seeder: Seeder, sizes: dict[str, int], targets: Targets, bar: Bar,
    on_written: Callable[[list[Path]], None], peers: Peers | None, game: str, version: str, build: str,
) -> Tally:
    """Fetch every chunk in `sizes` from the seeder and any friend online who holds it; write each where
    `targets` says, and tell `on_written` which files were written to."""
    friends: list[Friend] = []
    if peers is not None and peers.max_peers > 0 and peers.signalling.connected:
        try:
            friends = (await peers.signalling.find(game, version))[: peers.max_peers]
        except (SwarmRefused, TrackerUnavailable):
            friends = []  # no friends this time: the seeder has everything
    return await _Download(api, seeder, sizes, targets, bar, on_written, peers, build).run(friends)


@asynccontextmanager
async def peer_session(api: Api, max_peers: int, download_cap: int | None, wait: float = 2.0) -> AsyncIterator[Peers]:
    """A command's own connection to the swarm, for one download when no daemon runs (it serves nobody)."""
    signalling = Signalling(api)
    runner = asyncio.create_task(signalling.run(forever=False))
    try:
        waiter = asyncio.create_task(signalling.wait_connected(wait))
        await asyncio.wait({runner, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        yield Peers(signalling, max_peers=max_peers, download=TokenBucket(download_cap, CAP_BURST))
    finally:
        runner.cancel()
        try:
            await runner
        except (asyncio.CancelledError, MistError):
            pass
