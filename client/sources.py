"""Chunk sources: the seeder, a friend and the local disk behind one protocol, and the typed events they report.

The download loop (client/swarm.py) asks the scheduler which chunks to request
of which source, calls that source's `request`, and learns what happened from
the events the source puts on the loop's queue. A source does its own I/O and
verifies every chunk before a byte of it is written: the seeder's answers and
local copies are checked and written in a worker thread (`Written`), a
friend's chunks are checked by the wire protocol's reassembly and handed over
for the loop to write once the scheduler says they are fresh (`Arrived`).

    Written   verified chunks, already written to every position that wants them
    Arrived   a verified chunk (a friend's), for the loop to write if fresh
    Corrupt   chunks that failed verification
    Missing   chunks the source does not have after all
    Failed    a request that failed (connection, busy, unanswered): try elsewhere, back off
    Joined    a friend is connected and ready, holding these chunks (None: all)
    Holds     a friend announced more chunks
    Left      a friend went away
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, Union

from client import crashpoints
from client.errors import ServerRefused, TrackerUnavailable
from client.plan import Location
from client.scheduler import Kind
from client.staging import ChunkWriter, read_verified
from shared import compression, pack
from shared.chunking import ChunkRef
from shared.errors import ChunkCorrupt, PackError

if TYPE_CHECKING:
    from client.api import Api

LOCAL = "local"  # the local disk's source id
Targets = dict[str, list[tuple[Path, int]]]  # chunk -> every (staged file, offset) that wants its bytes


@dataclass(frozen=True)
class Written:
    source: str
    hashes: tuple[str, ...]
    wire: Mapping[str, int]  # each chunk's size as it crossed the network (compressed); 0 from the local disk
    received: int  # bytes of the whole answer on the network


@dataclass(frozen=True)
class Arrived:
    source: str
    sha256: str
    data: bytes
    wire: int


@dataclass(frozen=True)
class Corrupt:
    source: str
    hashes: tuple[str, ...]


@dataclass(frozen=True)
class Missing:
    source: str
    hashes: tuple[str, ...]


@dataclass(frozen=True)
class Failed:
    source: str
    hashes: tuple[str, ...]
    error: Exception | None = None  # None: answered, but without these


@dataclass(frozen=True)
class Joined:
    source: "ChunkSource"
    holds: frozenset[str] | None
    window: int


@dataclass(frozen=True)
class Holds:
    source: str
    hashes: tuple[str, ...]


@dataclass(frozen=True)
class Left:
    source: str
    error: Exception


Event = Union[Written, Arrived, Corrupt, Missing, Failed, Joined, Holds, Left]


class ChunkSource(Protocol):
    """Anything chunks can be asked of. `request` returns once the request is under way; what becomes of it
    arrives as events. `cancel` withdraws one chunk (a faster source brought it); `close` ends the source."""

    @property
    def id(self) -> str: ...

    @property
    def kind(self) -> Kind: ...

    async def request(self, hashes: Sequence[str]) -> None: ...

    async def cancel(self, sha256: str) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class Seeder:
    """Where the seeder is, and how to get a fresh ticket for it."""

    url: str
    ticket: Callable[[], Awaitable[str]]


@dataclass(frozen=True)
class Checked:
    """One pack answer, checked: chunks written, corrupt, missing from the store, and not answered at all."""

    written: tuple[str, ...]
    corrupt: tuple[str, ...]
    missing: tuple[str, ...]
    unanswered: tuple[str, ...]
    wire: dict[str, int]


def check_and_write(
    body: bytes | bytearray | memoryview, asked: Sequence[str], sizes: Mapping[str, int], targets: Targets
) -> Checked:
    """Verify every chunk of one answer and write the good ones where `targets` says (run in a thread).

    The whole answer is read first: one that breaks the protocol writes nothing. Its chunks are then
    decompressed in one call and written in runs (`ChunkWriter`), so a batch's thread holds the GIL for
    little more than the hashing's bookkeeping."""
    corrupt, missing = [], []
    chunks: list[pack.Record] = []
    seen: set[str] = set()
    wanted = set(asked)
    for record in pack.iter_records(memoryview(body)):
        sha = record.sha256
        if sha not in wanted or sha in seen:
            raise PackError(f"the seeder answered with chunk {sha[:12]}, which was not asked for (or twice)")
        seen.add(sha)
        if record.kind == pack.MISSING:
            missing.append(sha)
        else:
            chunks.append(record)
    contents = compression.decompress_many([record.payload for record in chunks], [sizes[r.sha256] for r in chunks])
    written: list[str] = []
    wire: dict[str, int] = {}
    with ChunkWriter() as writer:
        for at, record in enumerate(chunks):
            sha = record.sha256
            data = contents[at] if contents is not None else _decompressed(record, sizes[sha])
            if data is None or hashlib.sha256(data).hexdigest() != sha:
                corrupt.append(sha)
                continue
            writer.write(targets[sha], data)
            written.append(sha)
            wire[sha] = len(record.payload)
    return Checked(tuple(written), tuple(corrupt), tuple(missing), tuple(h for h in asked if h not in seen), wire)


def _decompressed(record: pack.Record, size: int) -> bytes | None:
    try:
        return compression.decompress(record.payload, size, record.sha256)
    except ChunkCorrupt:
        return None


class SeederSource:
    """The seeder: batches of chunks over HTTP, each answer checked and written in a worker thread."""

    kind: Kind = "seeder"

    def __init__(
        self,
        api: Api,
        seeder: Seeder,
        sizes: Mapping[str, int],
        targets: Targets,
        events: asyncio.Queue[Event],
        spawn: Callable[[Awaitable[None]], object],
        delay: Callable[[Sequence[str]], float] = lambda hashes: 0.0,
        source_id: str = "seeder",
    ) -> None:
        """`spawn` starts a task in the download's task group; `delay` is the download cap's wait for a request."""
        self._id = source_id
        self.api, self.seeder, self.sizes, self.targets, self.events = api, seeder, sizes, targets, events
        self.spawn, self.delay = spawn, delay

    @property
    def id(self) -> str:
        return self._id

    def __repr__(self) -> str:
        return f"SeederSource({self.seeder.url!r})"

    async def request(self, hashes: Sequence[str]) -> None:
        self.spawn(self._fetch(tuple(hashes)))

    async def cancel(self, sha256: str) -> None:
        pass  # an HTTP batch is not withdrawn: a duplicate costs a little bandwidth, and is not written twice

    async def close(self) -> None:
        self.api.let_buffers_go()

    async def _fetch(self, hashes: tuple[str, ...]) -> None:
        wait = self.delay(hashes)
        if wait > 0:
            await asyncio.sleep(wait)
        try:
            body = await self.api.seeder_answer(
                f"{self.seeder.url}/fetch",
                await self.seeder.ticket(),
                pack.encode_hashes(hashes),
                pack.answer_bound(self.sizes[h] for h in hashes),
            )
            received = len(body)
            checked = await asyncio.to_thread(check_and_write, body, hashes, self.sizes, self.targets)
            self.api.give_back(body)  # only once the thread is done with it (a cancelled read leaves it be)
        except ServerRefused as exc:
            if exc.status < 500:
                raise  # the ticket or the request is wrong: no retry would help
            await self.events.put(Failed(self.id, hashes, exc))
            return
        except (TrackerUnavailable, PackError) as exc:  # unreachable, or an answer too large or malformed: retry
            await self.events.put(Failed(self.id, hashes, exc))
            return
        if checked.written:
            await self.events.put(Written(self.id, checked.written, checked.wire, received))
        elif received:
            await self.events.put(Written(self.id, (), {}, received))  # the bytes still crossed the network
        if checked.corrupt:
            await self.events.put(Corrupt(self.id, checked.corrupt))
        if checked.missing:
            await self.events.put(Missing(self.id, checked.missing))
        if checked.unanswered:
            await self.events.put(Failed(self.id, checked.unanswered))
        crashpoints.reach("fetched-batch")


def copy_local(
    hashes: Sequence[str], local: Mapping[str, Sequence[Location]], sizes: Mapping[str, int], targets: Targets
) -> tuple[list[str], list[str]]:
    """Copy chunks from local files that hold them, each verified first; (copied, not had) (run in a thread)."""
    copied, lacking = [], []
    with ChunkWriter() as writer:
        for sha in hashes:
            for location in local.get(sha, ()):
                data = read_verified(location.path, location.offset, ChunkRef(sha, sizes[sha]))
                if data is not None:
                    writer.write(targets[sha], data)
                    copied.append(sha)
                    break
            else:
                lacking.append(sha)
    return copied, lacking


class LocalDisk:
    """Chunks that installed files on this machine hold, read and verified before they are copied."""

    kind: Kind = "local"

    def __init__(
        self,
        local: Mapping[str, Sequence[Location]],
        sizes: Mapping[str, int],
        targets: Targets,
        events: asyncio.Queue[Event],
        spawn: Callable[[Awaitable[None]], object],
    ) -> None:
        self.local, self.sizes, self.targets, self.events, self.spawn = local, sizes, targets, events, spawn

    @property
    def id(self) -> str:
        return LOCAL

    def __repr__(self) -> str:
        return f"LocalDisk(chunks={len(self.local)})"

    @property
    def holds(self) -> frozenset[str]:
        return frozenset(h for h in self.sizes if self.local.get(h))

    async def request(self, hashes: Sequence[str]) -> None:
        self.spawn(self._copy(tuple(hashes)))

    async def cancel(self, sha256: str) -> None:
        pass

    async def close(self) -> None:
        pass

    async def _copy(self, hashes: tuple[str, ...]) -> None:
        copied, lacking = await asyncio.to_thread(copy_local, hashes, self.local, self.sizes, self.targets)
        if copied:
            await self.events.put(Written(self.id, tuple(copied), dict.fromkeys(copied, 0), 0))
        if lacking:
            await self.events.put(Missing(self.id, tuple(lacking)))
