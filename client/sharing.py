"""Serving friends: the chunks of our installed builds, read from the installed files, to a valid ticket.

`Library` knows where each chunk of each installed build lies on disk and
reads it back verified, so a file the user modded or the disk damaged is
never sent (the chunk is refused instead). `serve` runs one friend's session
on an open link: the ticket is checked offline with the tracker's key (a
ticket signed by a key the tracker rotated to sends us to the tracker for the
hand-over first), only chunks of the ticket's build are served, at most
`window` requests are held, and every chunk waits for the shared upload cap
before it is sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from client.api import Api
from client.errors import RecordLost
from client.journal import Confined
from client.peerlink import PeerGone, PeerLink
from client.peerwire import NOT_HELD, Have, HaveAll, Hello, PeerProtocolError, Reject, Uploader, encode, fragments
from client.ratelimit import TokenBucket
from client.state import State
from shared import rawfile, tickets
from shared.build_index import BuildIndex
from shared.errors import LocalProtocolError, MistError, TicketError, TicketSignatureError

log = logging.getLogger("mist.client")
HAVE_BATCH = 4096  # hashes per HAVE: 128 KiB, under the data channel's 256 KiB message limit
MANIFESTS_KEPT = 4  # manifests of builds we do not hold (updates: we serve the chunks we share with them)


class TrackerKey(Protocol):
    """The key friends' tickets are checked with, and a way to follow the tracker to its next one (client.api.Api)."""

    @property
    def public_key(self) -> str: ...

    async def follow_key(self) -> bool: ...


@dataclass
class Library:
    """What this client can serve. `refresh` re-reads the installs (after an install, update or uninstall).

    Each build is a compact index (shared/build_index.py), not a parsed manifest with a set of its chunks
    and a dict of where each lies: those were ~700 MB for one 100 GB install, the index ~70 MB."""

    state: State
    api: Api | None = None
    builds: dict[str, BuildIndex] = field(default_factory=dict)  # installed build digest -> its index
    _folders: dict[str, Path] = field(default_factory=dict)  # installed build digest -> its install folder
    _other: OrderedDict[str, BuildIndex] = field(default_factory=OrderedDict)

    def __repr__(self) -> str:
        return f"Library(builds={len(self.builds)}, chunks={sum(len(b.chunks) for b in self.builds.values())})"

    def refresh(self) -> None:
        builds: dict[str, BuildIndex] = {}
        folders: dict[str, Path] = {}
        for install in self.state.installs():
            # The index kept in client.db, or made once from the manifest (verified when installed) and kept: a
            # 100 GB build's takes 11 CPU s to make and a fraction of one to read back. Shared with the installer.
            try:
                builds[install.digest] = install.build
            except RecordLost as exc:  # shared again once an install, update or verify has fetched it back
                log.warning("not sharing %s: %s", install.game, exc)
                continue
            folders[install.digest] = install.dir
        self.builds, self._folders = builds, folders

    def held_builds(self) -> list[str]:
        return sorted(self.builds)

    def holds(self, sha256: str) -> bool:
        return any(build.has_chunk(sha256) for build in self.builds.values())

    def _index(self, build: str) -> BuildIndex | None:
        found = self.builds.get(build)
        return found if found is not None else self._other.get(build)

    def chunks_of(self, build: str) -> Collection[str]:
        found = self._index(build)
        return found.chunk_names if found is not None else frozenset()

    async def learn(self, build: str, game: str, version: str) -> Collection[str]:
        """The chunks of a build a friend wants: ours if installed, else from its manifest, fetched and checked."""
        if self._index(build) is not None or self.api is None:
            return self.chunks_of(build)
        # As a delta from the build of the game held here, if any: a big game's manifest is tens of MB. With the
        # held one kept as a file, in entries, applied file to file and indexed from the held index (installer).
        held = await asyncio.to_thread(self.state.held_for_delta, game)
        signed = await self.api.manifest(game, version, held, into=self.state.incoming_manifest)
        try:
            if await self.api.verify_manifest(signed) != build:
                raise MistError(f"the tracker's manifest of {game} {version} is not the build the friend asked for")
            self._other[build] = await asyncio.to_thread(
                BuildIndex.rebuilt_or_scanned, self.builds.get(signed.delta_from), signed.rebuilt, signed.path or signed.data
            )
        finally:
            if signed.path is not None:
                await asyncio.to_thread(signed.path.unlink, missing_ok=True)
        while len(self._other) > MANIFESTS_KEPT:
            self._other.popitem(last=False)
        return self.chunks_of(build)

    def _locations(self, sha256: str) -> Iterator[tuple[Path, int, int]]:
        """Each installed file that should hold the chunk: (its path, the offset, the size)."""
        for digest, build in self.builds.items():
            found = build.locate(sha256)
            if found is None:
                continue
            path, offset, size = found
            try:
                yield Confined(self._folders[digest]).path(path), offset, size
            except MistError:
                continue

    def read(self, sha256: str) -> bytes | None:
        """The chunk's bytes from the installed file, or None if the file no longer holds them."""
        for path, offset, size in self._locations(sha256):
            try:
                fd = rawfile.open_no_follow(path)
            except OSError:
                continue
            try:
                data = rawfile.pread(fd, size, offset)
            finally:
                os.close(fd)
            if len(data) == size and hashlib.sha256(data).hexdigest() == sha256:
                return data
        return None


@dataclass
class Uploads:
    """What every friend's session shares: the upload cap, and totals for `mist status`."""

    bucket: TokenBucket
    clock: Callable[[], float] = time.monotonic
    sent: int = 0
    sessions: dict[str, "UploadView"] = field(default_factory=dict)
    links: dict[str, PeerLink] = field(default_factory=dict)
    ended: set[str] = field(default_factory=set)  # ticket sessions the admin ended: refused, and cut if open
    given: dict[str, int] = field(default_factory=dict)  # bytes sent to each friend's user since the daemon started

    def __repr__(self) -> str:
        return f"Uploads(sessions={len(self.sessions)}, sent={self.sent}, bucket={self.bucket!r})"

    async def end(self, sessions: list[str]) -> None:
        """The tracker says these login sessions were ended: refuse their tickets, and close their links now."""
        self.ended.update(sessions)
        for key, view in list(self.sessions.items()):
            link = self.links.get(key)
            if view.ticket_session in self.ended and link is not None:
                await link.close()


@dataclass
class UploadView:
    user: str
    game: str
    started: float
    chunks: int = 0
    bytes: int = 0
    ticket_session: str = ""


async def serve(
    link: PeerLink,
    library: Library,
    tracker: TrackerKey,
    uploads: Uploads,
    key: str,
    user: str,
    build: str,
    game: str,
    window: int,
    report: Callable[[str], Awaitable[None]] | None = None,
) -> None:
    """One friend's session, until the link closes or the friend misbehaves (then the link is closed, and
    `report` tells the tracker, as a downloader reports a friend who sent a corrupt chunk)."""

    def authorize(token: str) -> str:
        ticket = tickets.decode(token, tracker.public_key, time.time())
        tickets.require(ticket, tickets.READ, build)
        if ticket.session in uploads.ended:
            raise TicketError("the admin ended the session this ticket was issued under")
        view.ticket_session = ticket.session
        return ticket.build

    uploader = Uploader(authorize=authorize, build_chunks=library.chunks_of, holds=library.holds, window=window)
    view = uploads.sessions[key] = UploadView(user, game, time.time())
    uploads.links[key] = link
    wake = asyncio.Event()

    async def listen() -> None:
        while True:
            message = await link.receive()
            if isinstance(message, Hello):
                await _follow_for(message.ticket, tracker)
            for reply in uploader.handle(message):
                await link.send(reply)
            if isinstance(message, Hello):
                await _announce(link, library, uploader.build)
            wake.set()

    async def send() -> None:
        while True:
            job = uploader.next_to_serve()
            if job is None:
                wake.clear()
                await wake.wait()
                continue
            encoded = await asyncio.to_thread(_read_encoded, library, job.sha256)
            if encoded is None:
                await link.send(Reject(job.request_id, job.sha256, NOT_HELD))
                continue
            encoding, payload = encoded
            delay = uploads.bucket.delay(len(payload), uploads.clock())  # the cap is on what crosses the link
            if delay > 0:
                await asyncio.sleep(delay)
            for piece in fragments(job.request_id, job.sha256, payload, encoding):
                await link.send(piece)
            view.chunks += 1
            view.bytes += len(payload)
            uploads.sent += len(payload)
            uploads.given[user] = uploads.given.get(user, 0) + len(payload)

    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(listen())
            group.create_task(send())
    except* LocalProtocolError as group:  # ours: a bug here, logged as one; the friend may come back at once
        log.error(
            "a bug in this client broke the peer protocol while serving %s (the friend is not blamed)",
            user,
            exc_info=group.exceptions[0],
        )
    except* PeerProtocolError as group:  # theirs: the link is closed on them, and the admin hears of it
        log.warning("%s broke the peer protocol and was cut off: %s", user, group.exceptions[0])
        if report is not None:
            await report(f"broke the peer protocol: {group.exceptions[0]}"[:500])
    except* (PeerGone, MistError):
        pass  # the friend left, or showed a bad ticket: this session ends, others go on
    finally:
        uploads.sessions.pop(key, None)
        uploads.links.pop(key, None)
        await link.close()


async def _follow_for(token: str, tracker: TrackerKey) -> None:
    """A friend whose client already follows the tracker's new key sends a ticket it signed: follow it too.

    Only a failing signature asks the tracker; if the key did not move, the
    uploader then refuses the ticket as before.
    """
    try:
        tickets.decode(token, tracker.public_key, time.time())
    except TicketSignatureError:
        await tracker.follow_key()
    except TicketError:
        pass  # expired or malformed: the uploader refuses it and says why


def _read_encoded(library: Library, sha256: str) -> tuple[int, bytes] | None:
    data = library.read(sha256)
    return None if data is None else encode(data)


async def _announce(link: PeerLink, library: Library, build: str) -> None:
    """Right after WELCOME: HAVE_ALL if we hold the whole build, else what we hold of it (possibly nothing)."""
    wanted = library.chunks_of(build)
    if build in library.builds:
        await link.send(HaveAll(build))
        return
    held = sorted(h for h in wanted if library.holds(h))
    for i in range(0, max(1, len(held)), HAVE_BATCH):
        await link.send(Have(tuple(held[i : i + HAVE_BATCH])))
