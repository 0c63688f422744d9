"""Downloading chunks from the seeder and online friends at once, as the scheduler decides.

The one download loop of the client: the scheduler (pure) says which chunks
to ask of which source, the sources (client/sources.py: this disk, the seeder,
each friend) do the I/O, and their typed events come back here. Chunks this
machine already holds are copied in a first pass; the network gets only what
that leaves. Every chunk is verified before a byte is written. A friend who
sends one bad chunk, or breaks the wire protocol, is dropped for this download
and reported to the tracker; a friend who vanishes or never connects costs
nothing but time, and its pieces go elsewhere. When this client breaks the
protocol (a LocalProtocolError), that is our bug: it is logged as one, and
the friend leaves the download unblamed. Patch objects come through the same loop (seeder only).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from client.errors import DownloadFailed, TrackerUnavailable
from client.friend_source import FriendSource, befriend
from client.peerlink import PeerLink
from client.peerwire import PeerProtocolError
from client.plan import Location
from client.progress import Bar
from client.ratelimit import CAP_BURST, TokenBucket
from client.scheduler import PEER_FLOOR, SEEDER_CORRUPT_LIMIT, Scheduler
from client.signalling import Friend, Signalling, SwarmRefused
from client.sources import (
    LOCAL,
    Arrived,
    ChunkSource,
    Corrupt,
    Event,
    Failed,
    Holds,
    Joined,
    Left,
    LocalDisk,
    Missing,
    Seeder,
    SeederSource,
    Targets,
    Written,
)
from client.staging import ChunkWriter
from shared import wording
from shared.errors import LocalProtocolError, MistError
from shared.wording import count

if TYPE_CHECKING:
    from client.api import Api

log = logging.getLogger("mist.client")
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
    copied: int = 0  # bytes copied from files on this disk
    from_network: set[str] = field(default_factory=set)  # chunks that came from the seeder or a friend
    chunks_from_peers: int = 0
    written: int = 0
    peers_used: int = 0
    peers_dropped: dict[str, str] = field(default_factory=dict)  # friend's user -> why


class _Download:
    """One run of the download loop: the scheduler decides, the sources act, their events come back here."""

    def __init__(
        self,
        api: Api,
        seeder: Seeder,
        sizes: dict[str, int],
        targets: Targets,
        bar: Bar,
        on_written: Callable[[list[Path]], None],
        peers: Peers | None,
        build: str,
        clock: Callable[[], float] = time.monotonic,
        local: LocalDisk | None = None,
    ) -> None:
        """`clock` is the scheduler's time (the tests pass their own); `local`: copy from this machine's files
        first, and from the network only what they do not hold (or hold damaged)."""
        self.api, self.seeder, self.sizes, self.targets = api, seeder, sizes, targets
        self.bar, self.on_written, self.peers, self.build = bar, on_written, peers, build
        self.clock = clock
        self.sched = Scheduler(
            sizes,
            seeder_share=peers.signalling.seeder_share if peers else 1.0,
            peer_floor=peers.signalling.peer_floor if peers else PEER_FLOOR,
        )
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self.sources: dict[str, ChunkSource] = {}
        self.friends: dict[str, FriendSource] = {}
        self.dialing: dict[str, asyncio.Task[None]] = {}  # friends being connected to
        self.links: set[PeerLink] = set()  # every link made, ready or not: closed when the download ends
        self.over = False
        self.group: asyncio.TaskGroup | None = None  # the tasks of this download, while it runs
        self.tally = Tally()
        self.seeder_error: Exception | None = None
        self.seeder_missing: set[str] = set()
        self.seeder_corrupt: set[str] = set()
        self._local = local
        self._seeder_source: SeederSource | None = None
        self._working: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"<download {self.sched!r}, connecting {len(self.dialing)}>"

    def _spawn(self, work: Awaitable[None]) -> object:
        """Start a source's request in the download's group; those still running when it ends are cancelled
        (a late answer whose chunks came from elsewhere, or a capped request still waiting its turn)."""
        assert self.group is not None
        task: asyncio.Task[None] = self.group.create_task(work)  # type: ignore[arg-type]  # sources pass coroutines
        self._working.add(task)
        task.add_done_callback(self._working.discard)
        return task

    def _add(self, source: ChunkSource, holds: frozenset[str] | None, max_pieces: int | None = None) -> bool:
        if not self.sched.add_source(source.id, holds, source.kind, max_pieces=max_pieces):
            return False
        self.sources[source.id] = source
        return True

    async def run(self, friends: list[Friend]) -> Tally:
        async with asyncio.TaskGroup() as group:
            self.group = group
            try:
                if self._local is not None:
                    self._add(self._local, self._local.holds)
                    self.sched.expect_peers(0)
                    await self._loop(self.clock(), until_stuck=True)  # what this disk holds first
                self._seeder_source = SeederSource(
                    self.api, self.seeder, self.sizes, self.targets, self.events, self._spawn, self._download_delay, SEEDER
                )
                self._add(self._seeder_source, None)
                for friend in friends:
                    self.dialing[friend.peer] = group.create_task(
                        befriend(
                            friend,
                            self.peers.signalling,
                            self.build,
                            self.seeder.ticket,
                            self.sizes,
                            self.events,
                            lambda: self.over,
                            self.links,
                            self._spawn,
                            self._download_delay,
                        )
                        if self.peers is not None
                        else _nothing()
                    )
                self.sched.expect_peers(len(self.dialing))
                await self._loop(self.clock() + CONNECT_GRACE)
            finally:  # done, or failed: the group waits for every friend's task, so each must end
                await self._end_links()
                if self._seeder_source is not None:
                    await self._seeder_source.close()
        self.tally.peers_dropped = {self.friends[p].info.user: why for p, why in self.sched.dropped.items() if p in self.friends}
        return self.tally

    async def _end_links(self) -> None:
        """Stop connecting, and close every link: that ends its reader. Closing, not only cancelling, also ends
        a task that lost its cancel: Python 3.11's wait_for returns a result that arrived together with the
        cancel and drops the cancel. Our own waits use asyncio.timeout, which does not; aiortc's DTLS
        handshake still uses wait_for."""
        self.over = True
        for task in [*self.dialing.values(), *self._working]:
            task.cancel()
        for link in list(self.links):
            await link.close()

    async def _loop(self, grace_ends: float, until_stuck: bool = False) -> None:
        """Until every chunk is in; `until_stuck`: or until what is left no source can supply (the local pass)."""
        while not self.sched.done:
            now = self.clock()
            if now >= grace_ends:
                self.sched.expect_peers(0)
            for cancel in self.sched.expire(now):
                await self._cancel(cancel.source_id, cancel.hash)
            requests = self.sched.plan(now)
            for request in requests:
                source = self.sources.get(request.source_id)
                if source is not None:
                    await source.request(request.hashes)
            if self.sched.done:
                break
            if until_stuck:
                if not requests and not self.sched.in_flight:
                    return  # nothing asked, nothing coming: the rest is for the network
            else:
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
            await self.handle(event)
            while not self.events.empty():
                await self.handle(self.events.get_nowait())

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

    def _download_delay(self, hashes: Sequence[str]) -> float:
        """The user's download cap: how long to wait before asking for these chunks (0: at once)."""
        if self.peers is None or self.peers.download is None:
            return 0.0
        return self.peers.download.delay(sum(self.sizes[h] for h in hashes), self.clock())

    async def _cancel(self, source_id: str, h: str) -> None:
        source = self.sources.get(source_id)
        if source is not None:
            await source.cancel(h)

    # ---- events -------------------------------------------------------------------------------------

    async def handle(self, event: Event) -> None:
        """Tell the scheduler what a source reported, and act on its answer."""
        now = self.clock()
        if isinstance(event, Written):
            await self._written(event, now)
        elif isinstance(event, Arrived):
            await self._arrived(event, now)
        elif isinstance(event, Corrupt):
            for h in event.hashes:
                self.sched.corrupt(event.source, h)
            if event.source == SEEDER:
                self.seeder_corrupt.update(event.hashes)
            elif event.source in self.friends:
                await self._drop(event.source, event.hashes[0])
        elif isinstance(event, Missing):
            if event.source == SEEDER:
                self.seeder_missing.update(event.hashes)
            self.sched.missing(event.source, event.hashes)
        elif isinstance(event, Failed):
            self.sched.failed(event.source, event.hashes, now)
            if event.error is not None and event.source == SEEDER:
                self.seeder_error = event.error
                if not self.friends and not self.dialing:
                    raise event.error  # nobody else to ask: say so now, as before there were friends
        elif isinstance(event, Joined):
            self.dialing.pop(event.source.id, None)
            self.sched.expect_peers(len(self.dialing))
            if self._add(event.source, event.holds, max_pieces=event.window):
                assert isinstance(event.source, FriendSource)
                self.friends[event.source.id] = event.source
                self.tally.peers_used += 1
        elif isinstance(event, Holds):
            self.sched.update_holdings(event.source, event.hashes)
        elif isinstance(event, Left):
            self.dialing.pop(event.source, None)
            self.sched.expect_peers(len(self.dialing))
            if isinstance(event.error, PeerProtocolError):  # the friend's breach counts against it
                self.sched.drop(event.source, f"broke the peer protocol ({event.error})")
                await self._report(event.source, f"broke the peer protocol: {event.error}")
            elif isinstance(event.error, LocalProtocolError):
                log.error(
                    "a bug in this client broke the peer protocol with friend %s (the friend is not blamed): %s",
                    event.source[:12],
                    event.error,
                    exc_info=event.error,
                )
            self.sched.remove_source(event.source)

    async def _written(self, event: Written, now: float) -> None:
        if event.source == SEEDER:
            self.tally.from_seeder += event.received
            if self.peers is not None:
                self.peers.count(SEEDER, event.received)
        fresh = []
        for h in event.hashes:
            receipt = self.sched.received(event.source, h, now, event.wire[h])
            for cancel in receipt.cancel:
                await self._cancel(cancel.source_id, cancel.hash)
            if receipt.fresh:
                fresh.append(h)
        if event.source == LOCAL:
            self.tally.copied += sum(self.sizes[h] * len(self.targets[h]) for h in fresh)
        else:
            self.tally.from_network.update(fresh)
        self._count(fresh)
        # Only the chunks this answer was first with: a file's countdown must not count a position twice
        # (a friend's copy may have come first), or the file would be finished before it is whole.
        self.on_written([path for h in fresh for path, _ in self.targets[h]])

    async def _arrived(self, event: Arrived, now: float) -> None:
        receipt = self.sched.received(event.source, event.sha256, now, event.wire)
        for cancel in receipt.cancel:
            await self._cancel(cancel.source_id, cancel.hash)
        if not receipt.fresh:
            return
        self.tally.from_peers += event.wire
        self.tally.chunks_from_peers += 1
        self.tally.from_network.add(event.sha256)
        friend = self.friends.get(event.source)
        if self.peers is not None and friend is not None:
            self.peers.count(friend.info.user, event.wire)
        paths = self.targets[event.sha256]
        await asyncio.to_thread(_write, paths, event.data)
        self._count([event.sha256])
        self.on_written([p for p, _ in paths])

    async def _drop(self, peer: str, sha256: str) -> None:
        """A friend sent a corrupt chunk: close its link and tell the tracker (the scheduler dropped it)."""
        friend = self.friends[peer]
        await friend.close()
        await self._report(peer, f"sent a corrupt copy of chunk {sha256}")

    async def _report(self, peer: str, reason: str) -> None:
        """Tell the tracker what a friend did (the admin sees it), without holding up the download."""
        if self.peers is None or self.group is None:
            return
        self.group.create_task(self.peers.signalling.report(peer, self.build, reason[:500]))

    def _count(self, fresh: list[str]) -> None:
        size = sum(self.sizes[h] * len(self.targets[h]) for h in fresh)
        self.tally.written += size
        self.bar.advance(size)  # every position written: the bar's total is the bytes of the files to write


async def _nothing() -> None:
    pass


def _write(paths: list[tuple[Path, int]], data: bytes) -> None:
    with ChunkWriter() as writer:
        writer.write(paths, data)


def missing_chunk(sha256: str) -> DownloadFailed:
    return DownloadFailed(f"the seeder does not have chunk {sha256[:12]} of this build; ask the admin to push it again")


def corrupt_chunk(count: int, sha256: str) -> DownloadFailed:
    return DownloadFailed(
        f"{wording.count(count, 'chunk')} arrived corrupt {SEEDER_CORRUPT_LIMIT} times (first {sha256[:12]}); "
        "the server's store may be damaged, tell the admin"
    )


async def download(
    api: Api,
    seeder: Seeder,
    sizes: dict[str, int],
    targets: Targets,
    bar: Bar,
    on_written: Callable[[list[Path]], None],
    peers: Peers | None,
    game: str = "",
    version: str = "",
    build: str = "",
    local: Mapping[str, Sequence[Location]] | None = None,
) -> Tally:
    """Fetch every chunk in `sizes`, from this machine's files first (`local`), then the seeder and any friend
    online who holds it (`peers`; None: the seeder alone); write each where `targets` says, and tell
    `on_written` which files were written to."""
    friends: list[Friend] = []
    if peers is not None and peers.max_peers > 0 and peers.signalling.connected:
        try:
            friends = (await peers.signalling.find(game, version))[: peers.max_peers]
        except (SwarmRefused, TrackerUnavailable):
            friends = []  # no friends this time: the seeder has everything
    download = _Download(api, seeder, sizes, targets, bar, on_written, peers, build)
    if local:
        download._local = LocalDisk(local, sizes, targets, download.events, download._spawn)
    return await download.run(friends)


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
