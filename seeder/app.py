"""The seeder's HTTP routes: which chunks are missing, upload chunks, fetch chunks and patches, rdiff deltas.

Every route needs a ticket from the tracker (`Authorization: Ticket <t>`),
checked offline with the tracker's public key. A read ticket names a build by
its manifest digest; the seeder reads that manifest from the store and serves
only what belongs to it: its chunks, patch objects whose target is one of its
files (the patch's header says so), and rdiff deltas to one of its files.

Stored objects leave by sendfile (seeder/sendfile.py): batched in a pack by
`POST /fetch`, one at a time by `GET /chunk/<sha256>`. Behind nginx, the seeder
can leave even that to nginx: with `accel_redirect` set, `GET /chunk/...`
checks the ticket and answers with `X-Accel-Redirect` to the object's file
(deploy/nginx/seeder-accel.conf).

A store without local files (an S3 bucket) streams its objects through the seeder; with `link_seconds`
set and a store that can sign links, `GET /chunk/...` checks the ticket and answers with a redirect to a
signed URL of the object instead, so the client (or a CDN in front of the bucket) fetches it from the bucket.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Set as AbstractSet
from dataclasses import dataclass, field

from aiohttp import web

from seeder import health, sendfile
from seeder.open_objects import OpenObjects
from seeder.verify import verify_upload
from shared import build_indexes, compression, pack, patch, patch_bundle, rdiff, tickets
from shared.build_index import BuildIndex
from shared.build_indexes import BuildIndexes
from shared.chunkstore import ChunkStore, read_file
from shared.errors import ChunkMissing, MistError, PackError, PatchError, TicketError, TicketSignatureError
from shared.manifest import FileEntry
from shared.service import forwarded, observability
from shared.service.errors import error_middleware
from shared.service.metrics import METRICS, Counter, HttpMetrics, Registry, metrics_route
from shared.service.settings import ServiceSettings

log = logging.getLogger("mist.seeder")
MAX_HASHES_PER_REQUEST = 100_000
MAX_FETCH_PER_REQUEST = 4096
MAX_UPLOAD_BODY = 64 * 1024 * 1024
MAX_DELTA_FILE = 256 * 1024 * 1024  # the target file is rebuilt in memory to diff against
DELTAS_AT_ONCE = 2
MIN_DELTA_BUDGET = 64  # no delta fits under this with its headers: answer at once
TICKET_CACHE = 4096  # verified tickets kept, so a client's many requests verify its signature once
MAX_DELTA_REQUEST = 32 * 1024 * 1024  # a librsync signature of the largest file a delta is made for, and more
OBJECT_HEADERS = {"Content-Type": "application/octet-stream", "Cache-Control": "private, max-age=3600, immutable"}


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
    accel_redirect: str = ""  # behind nginx: answer GET /chunk/... with X-Accel-Redirect to this prefix + ab/cd/<sha256>
    # Whether a ticket's session was ended by the admin (tracker/sessions.py); None: tickets live until they expire.
    ended: Callable[[str], Awaitable[bool]] | None = None
    link_seconds: int = 0  # >0 and a store that signs links: GET /chunk/... redirects to a URL good this long
    service: ServiceSettings = field(default_factory=ServiceSettings)  # /healthz's disk warning, /metrics, proxies
    indexes: BuildIndexes = field(default_factory=lambda: build_indexes.SHARED)  # the builds' indexes, as the tracker's
    _tickets: OrderedDict[str, tickets.Ticket] = field(default_factory=OrderedDict)
    _diffing: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(DELTAS_AT_ONCE))
    objects: OpenObjects | None = field(init=False, default=None)  # a store of local files: recent ones kept open

    def __post_init__(self) -> None:
        files = self.store.files
        if files is not None:
            self.objects = OpenObjects(files)

    def __repr__(self) -> str:
        return f"SeederContext(store={self.store!r}, indexes={self.indexes!r})"

    async def ticket(self, request: web.Request, scope: str) -> tickets.Ticket:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Ticket "):
            raise TicketError("this needs a ticket from the tracker (Authorization: Ticket ...)")
        token = header[7:]
        ticket = self._tickets.get(token)
        if ticket is not None:
            tickets.check_expiry(ticket, self.clock())
        else:
            ticket = await self._verify(token)
            self._tickets[token] = ticket  # only a ticket whose signature verified is kept
            if len(self._tickets) > TICKET_CACHE:
                self._tickets.popitem(last=False)
        if ticket.session and self.ended is not None and await self.ended(ticket.session):
            raise TicketError(
                "the admin ended the session this ticket was issued under (the account was disabled "
                "or its password changed); log in again"
            )
        tickets.require(ticket, scope)
        return ticket

    async def _verify(self, token: str) -> tickets.Ticket:
        """Check a ticket's signature; one that fails may be signed by the key the tracker rotated to."""
        try:
            return tickets.decode(token, self.public_key, self.clock())
        except TicketSignatureError:
            if self.follow_key is None:
                raise
            tried = self.public_key
            self.public_key = await self.follow_key(tried)
            if self.public_key == tried:
                raise
            self._tickets.clear()  # tickets of the key handed over from are not taken any more
            return tickets.decode(token, self.public_key, self.clock())

    async def build(self, digest: str) -> BuildIndex:
        """The chunks and files of the build a read ticket names, as a compact index (shared/build_indexes.py:
        a parsed 100 GB build was ~260 MB of Python objects, its index ~70 MB), made from its manifest in the
        store when no server of this process has it already."""
        return await self.indexes.index(digest, lambda: asyncio.to_thread(self._manifest, digest))

    def _manifest(self, digest: str) -> bytes:
        """The stored manifest of a ticket's build, checked against the digest the tracker signed into the ticket:
        a build the tracker checked at commit, so `BuildIndex.scan` may read it."""
        try:
            stored = self.store.get(digest)
        except ChunkMissing as exc:
            raise TicketError("the ticket's build is not in this seeder's store") from exc
        data = compression.decompress(stored, compression.content_size(stored), digest)
        if hashlib.sha256(data).hexdigest() != digest:
            raise TicketError("the ticket's build manifest in the store is damaged")
        return data

    def may_serve(self, build: BuildIndex, name: str) -> bool:
        """A chunk of the build, or a patch (or patch bundle) making only files of it (a patch the store lacks
        cannot show that)."""
        if build.has_chunk(name):
            return True
        targets = self.patch_targets(name)
        return bool(targets) and all(build.has_content(t) for t in targets)

    def patch_targets(self, name: str) -> tuple[str, ...]:
        """The file contents a stored patch object or bundle makes; () if the object is neither."""
        try:
            stored = self.store.get(name)
        except ChunkMissing:
            return ()
        try:
            start = compression.decompress_prefix(stored, max(patch.HEADER_SIZE, patch_bundle.START_SIZE))
            if patch_bundle.is_bundle(start):
                listing = compression.decompress_prefix(stored, patch_bundle.listing_size(patch_bundle.read_count(start)))
                return tuple(m.target for m in patch_bundle.read_members(listing))
            return (patch.read_header(start).target,)
        except PatchError:
            return ()


SEEDER = web.AppKey("seeder", SeederContext)


class RequestTooLarge(PackError):
    """A request body larger than the route takes: refused by its declared length before it is read."""

    status = 413


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request's body, at most `limit` bytes: a declared length over it is refused before reading a byte,
    and a body without one is counted as it comes. Each route holds its own limit, so it holds however the
    seeder is mounted (the embedded server's application takes manifests of 256 MiB)."""
    too_large = RequestTooLarge(
        f"this request body is larger than {limit} bytes, the most {request.path} takes; send less per request"
    )
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    body = bytearray()
    async for piece in request.content.iter_chunked(1 << 16):
        body += piece
        if len(body) > limit:
            raise too_large
    return bytes(body)


def _count_refusal(request: web.Request, exc: MistError) -> None:
    if isinstance(exc, TicketError):
        request.app[SEEDER_COUNTERS].refusals.inc()


errors_middleware = error_middleware(
    log, on_error=_count_refusal, where="seeder", too_large="request body is too large; send fewer chunks per request"
)


async def missing(request: web.Request) -> web.Response:
    """The hashes the store lacks; those it has are marked as used, so the garbage collector keeps them for the push."""
    ctx = request.app[SEEDER]
    await ctx.ticket(request, tickets.UPLOAD)
    hashes = pack.decode_hashes(await read_body(request, MAX_HASHES_PER_REQUEST * 32), MAX_HASHES_PER_REQUEST)
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
    body = await read_body(request, MAX_UPLOAD_BODY)
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

    def add(self, is_chunk: bool, size: int) -> None:
        """One object sent: a chunk of the build, or else a patch into one of its files."""
        if is_chunk:
            self.chunks, self.chunk_bytes = self.chunks + 1, self.chunk_bytes + size
        else:
            self.patches, self.patch_bytes = self.patches + 1, self.patch_bytes + size

    def count(self, counters: SeederCounters) -> None:
        counters.chunks_served.inc(self.chunks)
        counters.chunk_bytes_served.inc(self.chunk_bytes)
        counters.patches_served.inc(self.patches)
        counters.patch_bytes_served.inc(self.patch_bytes)
        counters.missing.inc(self.missing)


def _get(store: ChunkStore, name: str) -> bytes | None:
    try:
        return store.get(name)
    except ChunkMissing:
        return None


async def _read_pack(store: ChunkStore, hashes: list[str], patches: AbstractSet[str]) -> tuple[bytes, _Served]:
    """The pack answering `hashes`, and what it holds (`patches`: those that are patches, not the build's chunks).

    Each object of a bucket is a round trip: they are read in the default executor's threads at once, not
    one after another (a pack of 64 took 1.4x as long as 64 single GETs when read in turn, bench/s3_serving.py)."""
    found = await asyncio.gather(*(asyncio.to_thread(_get, store, h) for h in hashes))
    parts = []
    served = _Served()
    for h, data in zip(hashes, found):
        if data is None:
            parts.append(pack.encode_header(pack.MISSING, h, 0))
            served.missing += 1
        else:
            parts.append(pack.encode_header(pack.CHUNK, h, len(data)))
            parts.append(data)
            served.add(h not in patches, len(data))
    parts.append(pack.end_record())
    return b"".join(parts), served


def _pack_parts(objects: OpenObjects, hashes: list[str], patches: AbstractSet[str]) -> tuple[list[sendfile.Part], _Served]:
    """The records of a pack answer, each object's size known now (the answer's length is promised up front);
    `patches` are those of `hashes` that are patches, not the build's chunks (counted apart)."""
    parts = []
    served = _Served()
    now = objects.clock()
    for h in hashes:  # hex from decode_hashes: no need to check the names again
        record = objects.record(h, now)
        if record is None:
            parts.append(sendfile.Part(pack.encode_header(pack.MISSING, h, 0)))
            served.missing += 1
            continue
        size, header = record
        parts.append(sendfile.Part(header, h, size))
        served.add(h not in patches, size)
    parts.append(sendfile.Part(pack.end_record()))
    return parts, served


async def _send_parts(
    request: web.Request, parts: list[sendfile.Part], objects: OpenObjects, headers: dict[str, str]
) -> web.StreamResponse:
    response = web.StreamResponse(headers=headers)
    response.content_length = sendfile.length(parts)
    try:
        await sendfile.send(request, response, parts, objects)
    except ConnectionError as exc:  # the client left, or an object changed: the connection is closed already
        if isinstance(exc, sendfile.ObjectChanged):
            log.warning("answer cut off: %s", exc)
    return response


async def _authorize(ctx: SeederContext, build: BuildIndex, hashes: list[str]) -> set[str]:
    """Refuse any object that is neither a chunk of the build nor a patch making its files; returns the patches
    among them (each object is looked up once: the lookup is a tenth of the seeder's time on a busy pack route)."""
    has_chunk = build.has_chunk
    patches: set[str] = set()
    for h in hashes:
        if has_chunk(h):
            continue
        if not await asyncio.to_thread(ctx.may_serve, build, h):
            raise TicketError(f"object {h[:12]} is not part of the build this ticket is for (neither its chunk nor its patch)")
        patches.add(h)
    return patches


async def fetch(request: web.Request) -> web.StreamResponse:
    """A pack of the objects asked for; their bytes go from the store's files to the socket by sendfile."""
    ctx = request.app[SEEDER]
    ticket = await ctx.ticket(request, tickets.READ)
    hashes = pack.decode_hashes(await read_body(request, MAX_FETCH_PER_REQUEST * 32), MAX_FETCH_PER_REQUEST)
    build = await ctx.build(ticket.build)
    patches = await _authorize(ctx, build, hashes)
    if ctx.objects is None:  # a store without local files (a bucket): its bytes pass through this process
        body, served = await _read_pack(ctx.store, hashes, patches)
        served.count(request.app[SEEDER_COUNTERS])
        return web.Response(body=body, content_type="application/octet-stream")
    # On the event loop, like the open() and sendfile() that follow: on a store in the page cache each stat
    # takes microseconds (most are remembered), and a trip to a thread cost more than them (profiled under load).
    parts, served = _pack_parts(ctx.objects, hashes, patches)
    served.count(request.app[SEEDER_COUNTERS])
    return await _send_parts(request, parts, ctx.objects, {"Content-Type": "application/octet-stream"})


async def chunk(request: web.Request) -> web.StreamResponse:
    """One stored object (a chunk or a patch of the ticket's build), by itself: behind nginx, nginx sends it."""
    ctx = request.app[SEEDER]
    ticket = await ctx.ticket(request, tickets.READ)
    name = request.match_info["sha256"]
    build = await ctx.build(ticket.build)
    await _authorize(ctx, build, [name])
    served = _Served()
    links = ctx.store.links
    if ctx.objects is None and links is not None and ctx.link_seconds > 0:
        sizes = await asyncio.to_thread(ctx.store.sizes, [name])
        if name not in sizes:
            request.app[SEEDER_COUNTERS].missing.inc()
            raise ChunkMissing(f"object {name[:12]} is not in the store; ask the admin to push the build again", name)
        served.add(build.has_chunk(name), sizes[name])
        served.count(request.app[SEEDER_COUNTERS])
        url = await asyncio.to_thread(links.url, name, ctx.link_seconds)
        raise web.HTTPTemporaryRedirect(url, headers={"Cache-Control": "private, no-store"})
    if ctx.objects is None:
        data = await asyncio.to_thread(ctx.store.get, name)
        served.add(build.has_chunk(name), len(data))
        served.count(request.app[SEEDER_COUNTERS])
        return web.Response(body=data, headers=OBJECT_HEADERS)
    record = ctx.objects.record(name, ctx.objects.clock())  # the route takes only 64 hex digits
    if record is None:
        request.app[SEEDER_COUNTERS].missing.inc()
        raise ChunkMissing(f"object {name[:12]} is not in the store; ask the admin to push the build again", name)
    size = record[0]
    served.add(build.has_chunk(name), size)
    served.count(request.app[SEEDER_COUNTERS])  # counted here even when nginx sends the bytes
    headers = {**OBJECT_HEADERS, "ETag": f'"{name}"'}
    if ctx.accel_redirect:
        return web.Response(headers={**headers, "X-Accel-Redirect": f"{ctx.accel_redirect}{name[:2]}/{name[2:4]}/{name}"})
    return await _send_parts(request, [sendfile.Part(b"", name, size)], ctx.objects, headers)


def _delta_for(store: ChunkStore, entry: FileEntry, sig: bytes) -> bytes:
    return compression.compress(rdiff.delta(sig, read_file(store, entry)))


async def delta(request: web.Request) -> web.Response:
    """An rdiff delta from the client's own version of a file (its signature) to the build's file.

    The request says how many bytes fetching the file's chunks would move; a delta that is not smaller
    is not sent (204), so the client fetches the chunks instead.
    """
    ctx = request.app[SEEDER]
    ticket = await ctx.ticket(request, tickets.READ)
    target, budget, sig = rdiff.decode_request(await read_body(request, MAX_DELTA_REQUEST))
    build = await ctx.build(ticket.build)
    entry = build.file_with_content(target)
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


async def _close_objects(app: web.Application) -> None:
    objects = app[SEEDER].objects
    if objects is not None:
        objects.close()


def make_app(ctx: SeederContext, registry: Registry | None = None) -> web.Application:
    """The seeder as an aiohttp application, counting into `registry`; the embedded server mounts it at /seeder
    and gives it the tracker's registry, so one /metrics shows both."""
    app = web.Application(middlewares=[errors_middleware], client_max_size=MAX_UPLOAD_BODY)
    app[SEEDER] = ctx
    app.on_cleanup.append(_close_objects)
    app[SEEDER_COUNTERS] = SeederCounters.on(registry or Registry())
    app.add_routes(
        [
            web.post("/missing", missing),
            web.post("/chunks", upload),
            web.post("/fetch", fetch),
            web.post("/delta", delta),
            web.get("/chunk/{sha256:[0-9a-f]{64}}", chunk),
            health.route(ctx.store, ctx.service.disk_min_free),
        ]
    )
    return app


def make_service(ctx: SeederContext) -> web.Application:
    """The standalone seeder: the seeder at /seeder, with /metrics and /healthz at the root of its port."""
    registry = Registry()
    root = web.Application(
        middlewares=[forwarded.middleware(ctx.service.trusted_proxies), observability.observe(HttpMetrics.on(registry))],
        client_max_size=MAX_UPLOAD_BODY,
    )  # a sub-application's own limit is not applied
    root[METRICS] = registry
    observability.install(root)
    root.add_routes([metrics_route(ctx.service.metrics_token), health.route(ctx.store, ctx.service.disk_min_free)])
    root.add_subapp("/seeder", make_app(ctx, registry))
    return root
