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
from seeder import health
from seeder.verify import verify_upload
from tracker import observability
from tracker.metrics import METRICS, Counter, HttpMetrics, Registry, metrics_route

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
class SeederCounters:
    """What the seeder counts; in a counting directory (several seeder processes), summed over them on scrape."""

    chunks_served: Counter
    chunk_bytes_served: Counter
    patches_served: Counter
    patch_bytes_served: Counter
    missing: Counter
    deltas_served: Counter
    chunks_uploaded: Counter
    chunk_bytes_uploaded: Counter
    refusals: Counter

    @classmethod
    def on(cls, registry: Registry) -> "SeederCounters":
        c = registry.counter
        return cls(
            c("mist_seeder_chunks_served", "Chunks sent from the store in chunk packs"),
            c("mist_seeder_chunk_bytes_served", "Stored (compressed) bytes of the chunks sent"),
            c("mist_seeder_patches_served", "Patch objects sent from the store in chunk packs"),
            c("mist_seeder_patch_bytes_served", "Stored bytes of the patch objects sent"),
            c("mist_seeder_objects_missing", "Objects asked for that the store lacks (answered MISSING)"),
            c("mist_seeder_deltas_served", "rdiff deltas sent (those not smaller than the chunks are not)"),
            c("mist_seeder_chunks_uploaded", "Chunks received from pushes, verified and stored"),
            c("mist_seeder_chunk_bytes_uploaded", "Compressed bytes of the chunks received from pushes"),
            c("mist_seeder_ticket_refusals", "Requests refused for their ticket (none, forged, expired, other build)"),
        )


SEEDER_COUNTERS = web.AppKey("seeder_counters", SeederCounters)


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
    except TicketError as exc:
        request.app[SEEDER_COUNTERS].refusals.inc()
        return observability.error_json(status_for(exc), str(exc))
    except MistError as exc:
        return observability.error_json(status_for(exc), str(exc))
    except web.HTTPRequestEntityTooLarge:
        return observability.error_json(413, "request body is too large; send fewer chunks per request")
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return observability.error_json(500, "internal error; the seeder's log has the details")


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
    counters = request.app[SEEDER_COUNTERS]
    counters.chunks_uploaded.inc(stored)
    counters.chunk_bytes_uploaded.inc(size)
    return web.json_response({"stored": stored, "bytes": size})


@dataclass
class _Served:
    chunks: int = 0
    chunk_bytes: int = 0
    patches: int = 0
    patch_bytes: int = 0
    missing: int = 0

    def count(self, counters: SeederCounters) -> None:
        counters.chunks_served.inc(self.chunks)
        counters.chunk_bytes_served.inc(self.chunk_bytes)
        counters.patches_served.inc(self.patches)
        counters.patch_bytes_served.inc(self.patch_bytes)
        counters.missing.inc(self.missing)


def _read_pack(store: ChunkStore, hashes: list[str], chunks: frozenset[str]) -> tuple[bytes, _Served]:
    """The pack answering `hashes`, and what it holds (objects not among the build's `chunks` are patches)."""
    parts = []
    served = _Served()
    for h in hashes:
        try:
            data = store.get(h)
            parts.append(pack.encode_header(pack.CHUNK, h, len(data)))
            parts.append(data)
            if h in chunks:
                served.chunks, served.chunk_bytes = served.chunks + 1, served.chunk_bytes + len(data)
            else:
                served.patches, served.patch_bytes = served.patches + 1, served.patch_bytes + len(data)
        except ChunkMissing:
            parts.append(pack.encode_header(pack.MISSING, h, 0))
            served.missing += 1
    parts.append(pack.end_record())
    return b"".join(parts), served


async def fetch(request: web.Request) -> web.Response:
    ctx = request.app[SEEDER]
    ticket = await ctx.ticket(request, tickets.READ)
    hashes = pack.decode_hashes(await request.read(), MAX_FETCH_PER_REQUEST)
    build = await asyncio.to_thread(ctx.contents, ticket.build)
    for h in hashes:
        if h not in build.chunks and not await asyncio.to_thread(ctx.may_serve, build, h):
            raise TicketError(f"object {h[:12]} is not part of the build this ticket is for (neither its chunk nor its patch)")
    body, served = await asyncio.to_thread(_read_pack, ctx.store, hashes, build.chunks)
    served.count(request.app[SEEDER_COUNTERS])
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
    request.app[SEEDER_COUNTERS].deltas_served.inc()
    return web.Response(body=answer, content_type="application/octet-stream")


def make_app(ctx: SeederContext, registry: Registry | None = None) -> web.Application:
    """The seeder as an aiohttp application, counting into `registry`; the embedded server mounts it at /seeder
    and gives it the tracker's registry, so one /metrics shows both."""
    app = web.Application(middlewares=[errors_middleware], client_max_size=MAX_UPLOAD_BODY)
    app[SEEDER] = ctx
    app[SEEDER_COUNTERS] = SeederCounters.on(registry or Registry())
    app.add_routes([
        web.post("/missing", missing),
        web.post("/chunks", upload),
        web.post("/fetch", fetch),
        web.post("/delta", delta),
        health.route(ctx.store),
    ])
    return app


def make_service(ctx: SeederContext) -> web.Application:
    """The standalone seeder: the seeder at /seeder, with /metrics and /healthz at the root of its port."""
    registry = Registry()
    root = web.Application(middlewares=[observability.observe(HttpMetrics.on(registry))],
                           client_max_size=MAX_UPLOAD_BODY)  # a sub-application's own limit is not applied
    root[METRICS] = registry
    observability.install(root)
    root.add_routes([metrics_route(), health.route(ctx.store)])
    root.add_subapp("/seeder", make_app(ctx, registry))
    return root
