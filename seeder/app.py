"""The seeder's HTTP routes: which chunks are missing, upload chunks, fetch chunks.

Every route needs a ticket from the tracker (`Authorization: Ticket <t>`),
checked offline with the tracker's public key. A read ticket names a build by
its manifest digest; the seeder reads that manifest from the store and serves
only chunks that belong to it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from shared import compression, manifest as manifest_mod, pack, tickets
from shared.chunkstore import ChunkStore
from shared.errors import ChunkMissing, MistError, PackError, TicketError, status_for
from seeder.verify import verify_upload

log = logging.getLogger("mist.seeder")
MAX_HASHES_PER_REQUEST = 100_000
MAX_FETCH_PER_REQUEST = 4096
MAX_UPLOAD_BODY = 64 * 1024 * 1024
MANIFEST_CACHE = 16


@dataclass
class SeederContext:
    store: ChunkStore
    public_key: str
    clock: Callable[[], float] = time.time
    _chunk_sets: OrderedDict[str, frozenset[str]] = field(default_factory=OrderedDict)

    def __repr__(self) -> str:
        return f"SeederContext(store={self.store!r}, cached_builds={len(self._chunk_sets)})"

    def ticket(self, request: web.Request, scope: str) -> tickets.Ticket:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Ticket "):
            raise TicketError("this needs a ticket from the tracker (Authorization: Ticket ...)")
        ticket = tickets.decode(header[7:], self.public_key, self.clock())
        tickets.require(ticket, scope)
        return ticket

    def chunk_set(self, digest: str) -> frozenset[str]:
        """The chunks of the build a read ticket names, from its manifest in the store (cached)."""
        cached = self._chunk_sets.get(digest)
        if cached is not None:
            self._chunk_sets.move_to_end(digest)
            return cached
        try:
            stored = self.store.get(digest)
        except ChunkMissing as exc:
            raise TicketError("the ticket's build is not in this seeder's store") from exc
        data = compression.decompress(stored, compression.content_size(stored), digest)
        if hashlib.sha256(data).hexdigest() != digest:
            raise TicketError("the ticket's build manifest in the store is damaged")
        chunks = frozenset(manifest_mod.parse(data).chunk_sizes())
        self._chunk_sets[digest] = chunks
        while len(self._chunk_sets) > MANIFEST_CACHE:
            self._chunk_sets.popitem(last=False)
        return chunks


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
    ctx = request.app[SEEDER]
    ctx.ticket(request, tickets.UPLOAD)
    hashes = pack.decode_hashes(await request.read(), MAX_HASHES_PER_REQUEST)
    absent = await asyncio.to_thread(ctx.store.missing, hashes)
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
    ctx.ticket(request, tickets.UPLOAD)
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
    ticket = ctx.ticket(request, tickets.READ)
    hashes = pack.decode_hashes(await request.read(), MAX_FETCH_PER_REQUEST)
    allowed = await asyncio.to_thread(ctx.chunk_set, ticket.build)
    outside = next((h for h in hashes if h not in allowed), None)
    if outside is not None:
        raise TicketError(f"chunk {outside[:12]} is not part of the build this ticket is for")
    body = await asyncio.to_thread(_read_pack, ctx.store, hashes)
    return web.Response(body=body, content_type="application/octet-stream")


def make_app(ctx: SeederContext) -> web.Application:
    """The seeder as an aiohttp application; the embedded server mounts it at /seeder."""
    app = web.Application(middlewares=[errors_middleware], client_max_size=MAX_UPLOAD_BODY)
    app[SEEDER] = ctx
    app.add_routes([
        web.post("/missing", missing),
        web.post("/chunks", upload),
        web.post("/fetch", fetch),
    ])
    return app
