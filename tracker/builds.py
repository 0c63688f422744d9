"""Builds: committing a pushed manifest, removing a build, serving signed manifests, and issuing tickets.

The tracker refuses a manifest whose chunks are not all in the store, so a
committed build can always be installed; it then signs the canonical bytes
and puts the manifest in the store, where the seeder reads which chunks a
read ticket covers. Removing a build deletes its row and queues the garbage
collector, which removes the objects no remaining build needs.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from shared import compression, manifest as manifest_mod
from shared.tickets import READ, UPLOAD, Ticket
from tracker.config import TrackerContext
from tracker.db import patches as patch_queries, queries
from tracker.planner import patch_pairs
from tracker.errors import BadRequest, Conflict, PayloadTooLarge
from tracker.catalog import viewer
from tracker.web import CONTEXT, admin

MAX_MANIFEST = 256 * 1024 * 1024
TICKET_LIFETIME = 3600
MISSING_SHOWN = 20


def seeder_url(request: web.Request) -> str:
    """The configured URL, else /seeder on the host the client reached the tracker by (on the seeder's port if it has one)."""
    settings = request.app[CONTEXT].settings
    if settings.seeder_url:
        return settings.seeder_url
    origin = request.url.origin()
    if settings.seeder_port:
        origin = origin.with_port(settings.seeder_port)
    return str(origin) + "/seeder"


async def commit_build(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    admin(request)
    slug = request.match_info["slug"]
    if request.content_length is not None and request.content_length > MAX_MANIFEST:
        raise PayloadTooLarge(f"manifest is larger than {MAX_MANIFEST} bytes")
    data = await request.read()
    manifest = await asyncio.to_thread(manifest_mod.parse, data)
    if manifest.game != slug:
        raise BadRequest(f"manifest is for game {manifest.game!r} but was pushed to {slug!r}")
    chunks = manifest.chunk_sizes()
    # Marked used as they are checked, so a garbage collection running now keeps them for this build.
    missing = await asyncio.to_thread(ctx.store.touch, chunks)
    if missing:
        raise Conflict(
            f"{len(missing)} of the build's chunks are not in the store; upload them, then commit again",
            {"missing_count": len(missing), "missing": missing[:MISSING_SHOWN]},
        )
    stored = await asyncio.to_thread(ctx.store.sizes, chunks)
    digest = manifest.digest()
    signature = ctx.signer.sign(data)
    compressed = await asyncio.to_thread(compression.compress, data)
    await asyncio.to_thread(ctx.store.put, digest, compressed)
    await asyncio.to_thread(ctx.store.touch, [digest])  # it may be there already, from a build removed before
    row = await ctx.db.run(lambda s: queries.add_build(
        s, slug, manifest.version, digest, data, signature,
        manifest.total_size, len(manifest.files), len(chunks), sum(stored.values()),
    ))
    job, coming = await _queue_patches(ctx, slug, manifest)
    return web.json_response({**row.to_json(), "patch_job": job, "patches_coming": coming}, status=201)


async def _queue_patches(ctx: TrackerContext, slug: str, manifest: manifest_mod.Manifest) -> tuple[str, int]:
    """Queue the patches into the new build from the previous one and those friends hold; (job id, pairs)."""
    sources = await ctx.db.run(lambda s: patch_queries.patch_sources(s, slug, manifest.version))
    parsed = [await asyncio.to_thread(manifest_mod.parse, m.data) for m in sources]
    pairs = patch_pairs(manifest, parsed)
    job = await asyncio.to_thread(ctx.jobs.enqueue_patches, slug, manifest.version)
    for source, target in pairs:
        ctx.patch_jobs.setdefault((source.sha256, target.sha256), job)
    return job, len(pairs)


async def remove_build(request: web.Request) -> web.Response:
    """Take a build out of the catalog; if it was the latest, the one before it is the latest again."""
    ctx = request.app[CONTEXT]
    admin(request)
    slug, version = request.match_info["slug"], request.match_info["version"]
    await ctx.db.run(lambda s: queries.remove_build(s, slug, version))
    job = await asyncio.to_thread(ctx.jobs.enqueue_gc)
    return web.json_response({"game": slug, "removed": version, "gc_job": job})


async def get_manifest(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    looking = viewer(request)
    slug, version = request.match_info["slug"], request.match_info["version"]
    row, data, signature = await ctx.db.run(lambda s: queries.get_build(s, slug, version, looking))
    response = web.Response(
        body=data,
        content_type="application/json",
        headers={"X-Mist-Signature": signature, "X-Mist-Digest": row.manifest_digest},
    )
    response.enable_compression()
    return response


async def read_ticket(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    looking = viewer(request)
    slug, version = request.match_info["slug"], request.match_info["version"]
    row, _, _ = await ctx.db.run(lambda s: queries.get_build(s, slug, version, looking))
    expires = int(ctx.now) + TICKET_LIFETIME
    ticket = Ticket(looking.user, READ, row.manifest_digest, expires).encode(ctx.signer)
    return web.json_response({"ticket": ticket, "expires": expires, "seeder_url": seeder_url(request)})


async def upload_ticket(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    who = admin(request)
    expires = int(ctx.now) + TICKET_LIFETIME
    ticket = Ticket(who.user, UPLOAD, "", expires).encode(ctx.signer)
    return web.json_response({"ticket": ticket, "expires": expires, "seeder_url": seeder_url(request)})


async def info(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    return web.json_response({"service": "mist-tracker", "public_key": ctx.signer.public_key, "seeder_url": seeder_url(request)})


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/info", info),
        web.post("/api/games/{slug}/builds", commit_build),
        web.delete("/api/games/{slug}/builds/{version}", remove_build),
        web.get("/api/games/{slug}/builds/{version}/manifest", get_manifest),
        web.post("/api/games/{slug}/builds/{version}/ticket", read_ticket),
        web.post("/api/upload-ticket", upload_ticket),
    ]
