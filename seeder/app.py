"""The seeder's HTTP routes: which chunks are missing, upload chunks, fetch chunks and patches, rdiff deltas.

Every route needs a ticket from the tracker (`Authorization: Ticket <t>`),
checked offline with the tracker's public key. A read ticket names a build by
its manifest digest; the seeder reads that manifest from the store and serves
only what belongs to it: its chunks, patch objects whose target is one of its
files (the patch's header says so), and rdiff deltas to one of its files.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from shared import compression, manifest as manifest_mod, pack, patch, rdiff, tickets
from shared.chunkstore import ChunkStore, read_file
from shared.errors import ChunkMissing, MistError, PackError, PatchError, TicketError, TicketSignatureError, status_for
from shared.manifest import FileEntry
from seeder.verify import verify_upload

log = logging.getLogger("mist.seeder")
MAX_HASHES_PER_REQUEST = 100_000
MAX_FETCH_PER_REQUEST = 4096
MAX_UPLOAD_BODY = 64 * 1024 * 1024
MANIFEST_CACHE = 16
MAX_DELTA_FILE = 256 * 1024 * 1024  # the target file is rebuilt in memory to diff against
DELTAS_AT_ONCE = 2
MIN_DELTA_BUDGET = 64  # no delta fits under this with its headers: answer at once


@dataclass(frozen=True)
class BuildContents:
    chunks: frozenset[str]
    files: dict[str, FileEntry]


@dataclass
class SeederContext:
    """`follow_key`, given the key a ticket's signature failed with, answers the key to trust now (seeder/tracker_key.py)."""

    store: ChunkStore
    public_key: str
    clock: Callable[[], float] = time.time
    follow_key: Callable[[str], Awaitable[str]] | None = None
    _builds: OrderedDict[str, BuildContents] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _diffing: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(DELTAS_AT_ONCE))

    def __repr__(self) -> str:
        return f"SeederContext(store={self.store!r}, cached_builds={len(self._builds)})"

    async def ticket(self, request: web.Request, scope: str) -> tickets.Ticket:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Ticket "):
            raise TicketError("this needs a ticket from the tracker (Authorization: Ticket ...)")
        token = header[7:]
        try:
            ticket = tickets.decode(token, self.public_key, self.clock())
        except TicketSignatureError:
            if self.follow_key is None:
                raise
            tried = self.public_key
            self.public_key = await self.follow_key(tried)  # the tracker may have rotated to the key that signed it
            if self.public_key == tried:
                raise
            ticket = tickets.decode(token, self.public_key, self.clock())
        tickets.require(ticket, scope)
        return ticket

    def contents(self, digest: str) -> BuildContents:
        """The chunks and files of the build a read ticket names, from its manifest in the store (cached)."""
        with self._lock:
            cached = self._builds.get(digest)
            if cached is not None:
                self._builds.move_to_end(digest)
                return cached
        try:
            stored = self.store.get(digest)
        except ChunkMissing as exc:
            raise TicketError("the ticket's build is not in this seeder's store") from exc
        data = compression.decompress(stored, compression.content_size(stored), digest)
        if hashlib.sha256(data).hexdigest() != digest:
            raise TicketError("the ticket's build manifest in the store is damaged")
        parsed = manifest_mod.parse(data)
        contents = BuildContents(frozenset(parsed.chunk_sizes()), {f.sha256: f for f in parsed.files})
        with self._lock:  # handlers call this from several threads at once
            self._builds[digest] = contents
            while len(self._builds) > MANIFEST_CACHE:
                self._builds.popitem(last=False)
        return contents

    def may_serve(self, build: BuildContents, name: str) -> bool:
        """A chunk of the build, or a patch into one of its files (a patch the store lacks cannot show that)."""
        return name in build.chunks or self.patch_target(name) in build.files

    def patch_target(self, name: str) -> str | None:
        """The file content a stored patch object makes, or None if the object is not a patch."""
        try:
            stored = self.store.get(name)
        except ChunkMissing:
            return None
        try:
            return patch.read_header(compression.decompress_prefix(stored, patch.HEADER_SIZE)).target
        except PatchError:
            return None


SEEDER = web.AppKey("seeder", SeederContext)


@web.middleware
async def errors_middleware(request: web.Request, handler) -> web.StreamResponse:  # type: ignore[no-untyped-def]
    try:
        return await handler(request)
    except MistError as exc:
        return web.json_response({"error": str(exc), "detail": None}, status=status_for(exc))
    except web.HTTPRequestEntityTooLarge:
        return web.json_response({"error": "request body is too large; send fewer chunks per request", "detail": None}, status=413)


async def missing(request: web.Request) -> web.Response:
    """The hashes the store lacks; those it has are marked as used, so the garbage collector keeps them for the push."""
    ctx = request.app[SEEDER]
    await ctx.ticket(request, tickets.UPLOAD)
    hashes = pack.decode_hashes(await request.read(), MAX_HASHES_PER_REQUEST)
    absent = await asyncio.to_thread(ctx.store.touch, hashes)
    return web.Response(body=pack.encode_hashes(absent), content_type="application/octet-stream")


def _store_verified(store: ChunkStore, body: bytes) -> tuple[int, int]:
    records = list(pack.iter_records(body))
    for record in records:
        verify_upload(record)
    for record in records:
        store.put(record.sha256, record.payload)
    return len(records), sum(len(r.payload) for r in records)


async def upload(request: web.Request) -> web.Response:
    ctx = request.app[SEEDER]
    await ctx.ticket(request, tickets.UPLOAD)
    body = await request.read()
    stored, size = await asyncio.to_thread(_store_verified, ctx.store, body)
    return web.json_response({"stored": stored, "bytes": size})


def _read_pack(store: ChunkStore, hashes: list[str]) -> bytes:
    parts = []
    for h in hashes:
        try:
            data = store.get(h)
            parts.append(pack.encode_header(pack.CHUNK, h, len(data)))
            parts.append(data)
        except ChunkMissing:
            parts.append(pack.encode_header(pack.MISSING, h, 0))
    parts.append(pack.end_record())
    return b"".join(parts)


async def fetch(request: web.Request) -> web.Response:
    ctx = request.app[SEEDER]
    ticket = await ctx.ticket(request, tickets.READ)
    hashes = pack.decode_hashes(await request.read(), MAX_FETCH_PER_REQUEST)
    build = await asyncio.to_thread(ctx.contents, ticket.build)
    for h in hashes:
        if h not in build.chunks and not await asyncio.to_thread(ctx.may_serve, build, h):
            raise TicketError(f"object {h[:12]} is not part of the build this ticket is for (neither its chunk nor its patch)")
    body = await asyncio.to_thread(_read_pack, ctx.store, hashes)
    return web.Response(body=body, content_type="application/octet-stream")


def _delta_for(store: ChunkStore, entry: FileEntry, sig: bytes) -> bytes:
    return compression.compress(rdiff.delta(sig, read_file(store, entry)))


async def delta(request: web.Request) -> web.Response:
    """An rdiff delta from the client's own version of a file (its signature) to the build's file.

    The request says how many bytes fetching the file's chunks would move; a delta that is not smaller
    is not sent (204), so the client fetches the chunks instead.
    """
    ctx = request.app[SEEDER]
    ticket = await ctx.ticket(request, tickets.READ)
    target, budget, sig = rdiff.decode_request(await request.read())
    build = await asyncio.to_thread(ctx.contents, ticket.build)
    entry = build.files.get(target)
    if entry is None:
        raise TicketError("that file is not part of the build this ticket is for")
    if entry.size > MAX_DELTA_FILE or budget < MIN_DELTA_BUDGET:
        return web.Response(status=204, headers={"X-Mist-Delta-Bytes": "-1"})
    async with ctx._diffing:  # each rebuilds a file of up to 256 MiB in memory
        answer = await asyncio.to_thread(_delta_for, ctx.store, entry, sig)
    if len(answer) >= budget:
        return web.Response(status=204, headers={"X-Mist-Delta-Bytes": str(len(answer))})
    return web.Response(body=answer, content_type="application/octet-stream")


def make_app(ctx: SeederContext) -> web.Application:
    """The seeder as an aiohttp application; the embedded server mounts it at /seeder."""
    app = web.Application(middlewares=[errors_middleware], client_max_size=MAX_UPLOAD_BODY)
    app[SEEDER] = ctx
    app.add_routes([
        web.post("/missing", missing),
        web.post("/chunks", upload),
        web.post("/fetch", fetch),
        web.post("/delta", delta),
    ])
    return app
