"""Builds: committing a pushed manifest, removing a build, serving signed manifests, and issuing tickets.

The tracker refuses a manifest whose chunks are not all in the store, so a
committed build can always be installed; it then signs the canonical bytes
and puts the manifest in the store, where the seeder reads which chunks a
read ticket covers. A new build is handed to the announcer (online friends,
Discord). Removing a build deletes its row and queues the garbage
collector, which removes the objects no remaining build needs.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import BodyPartReader, web

from shared import compression, manifest as manifest_mod, manifest_delta, signing
from shared.errors import ManifestError
from shared.launch import MAX_LAUNCH, MAX_NOTES, check_notes, parse_launch
from shared.manifest import canonical_json
from shared.signing import fingerprint
from shared.tickets import READ, UPLOAD, Ticket
from shared.wording import count
from tracker.admin.formatting import human_bytes
from tracker.announce import ANNOUNCER, Announcer, Published
from tracker import commit_check
from tracker.config import TrackerContext
from tracker.counters import COUNTERS
from tracker.db import patches as patch_queries, queries
from tracker.errors import BadRequest, Conflict, PayloadTooLarge, QueueUnavailable
from tracker.planner import patch_pairs
from tracker.routes.activity import note
from tracker.routes.catalog import viewer
from tracker.routes.updates import parsed_manifest
from tracker.routes.web import ACCOUNT, CONTEXT, admin, json_body
from tracker.stored_sizes import StoredSizes

MAX_MANIFEST = 256 * 1024 * 1024
_DIGEST = re.compile(r"^[0-9a-f]{64}\Z")
TICKET_LIFETIME = 3600
MISSING_SHOWN = 20
log = logging.getLogger("mist.tracker")


def seeder_url(request: web.Request) -> str:
    """The configured URL; else /seeder on the configured public URL (behind a proxy the request's own origin is the
    proxy's upstream); else /seeder on the host the client reached the tracker by (on the seeder's port if it has one)."""
    settings = request.app[CONTEXT].settings
    if settings.seeder_url:
        return settings.seeder_url
    if settings.public_url_configured and not settings.seeder_port:
        return settings.public_url + "/seeder"
    origin = request.url.origin()
    if settings.seeder_port:
        origin = origin.with_port(settings.seeder_port)
    return str(origin) + "/seeder"


@dataclass(frozen=True)
class BuildUpload:
    """What a push commits: the canonical manifest, and the admin's release notes and launch command for it."""

    manifest: bytes  # b"" when the push sent the manifest as a delta from a build the tracker has
    notes: str = ""
    launch: str = ""
    manifest_delta: bytes = b""


async def _read_upload(request: web.Request) -> BuildUpload:
    """The manifest alone as the body, or multipart/form-data with the parts `manifest`, `notes` and `launch`."""
    if request.content_length is not None and request.content_length > MAX_MANIFEST + MAX_NOTES * 4 + MAX_LAUNCH * 4:
        raise PayloadTooLarge(f"manifest is larger than {MAX_MANIFEST} bytes")
    if not request.content_type.startswith("multipart/"):
        return BuildUpload(await request.read())
    parts: dict[str, bytes] = {}
    reader = await request.multipart()
    async for part in reader:
        if not isinstance(part, BodyPartReader) or part.name not in _UPLOAD_LIMITS or part.name in parts:
            raise BadRequest("a build upload has the parts manifest (or manifest_delta), notes and launch, each at most once")
        limit = _UPLOAD_LIMITS[part.name]
        data = bytearray()
        while chunk := await part.read_chunk():
            data += chunk
            if len(data) > limit:
                raise PayloadTooLarge(f"the {part.name} part is larger than {limit} bytes")
        parts[part.name] = bytes(data)
    if ("manifest" in parts) == ("manifest_delta" in parts):
        raise BadRequest("a build upload needs its manifest part, or a manifest_delta part instead")
    try:
        notes, launch = (parts.get(name, b"").decode("utf-8") for name in ("notes", "launch"))
    except UnicodeDecodeError as exc:
        raise BadRequest("release notes and the launch command must be UTF-8 text") from exc
    return BuildUpload(parts.get("manifest", b""), notes, launch, parts.get("manifest_delta", b""))


_UPLOAD_LIMITS = {"manifest": MAX_MANIFEST, "manifest_delta": MAX_MANIFEST, "notes": MAX_NOTES * 4, "launch": MAX_LAUNCH * 4}


async def _rebuilt(ctx: TrackerContext, slug: str, delta: bytes) -> bytes:
    """The pushed manifest from a delta against a build of the game the tracker has (shared/manifest_delta.py)."""
    base = manifest_delta.read_header(delta).base
    rows = await ctx.db.run(lambda s: patch_queries.manifests_by_digest(s, [base], queries.Viewer("", True)))
    held = next((r for r in rows if r.game == slug), None)
    if held is None:
        raise BadRequest(
            f"the manifest delta starts from build {base[:12]}, which {slug} does not have (removed?); "
            "push again, and the whole manifest is sent"
        )
    return await asyncio.to_thread(manifest_delta.apply, held.data, delta, manifest_delta.read_header(delta).target)


def checked_launch(command: str, manifest: manifest_mod.Manifest | None) -> str:
    """A launch command fit to store ("" clears it): its program must be a file of the build when the build is known."""
    command = command.strip()
    if not command:
        return ""
    parsed = parse_launch(command)
    if manifest is not None and parsed.program not in {f.path for f in manifest.files}:
        raise BadRequest(
            f"the launch command starts {parsed.program!r}, which is not a file of {manifest.game} "
            f"{manifest.version}; give the path of the game's program inside the build folder"
        )
    return command


async def commit_build(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    who = admin(request)
    slug = request.match_info["slug"]
    upload = await _read_upload(request)
    data = await _rebuilt(ctx, slug, upload.manifest_delta) if upload.manifest_delta else upload.manifest
    manifest = await asyncio.to_thread(manifest_mod.parse, data)
    if manifest.game != slug:
        raise BadRequest(f"manifest is for game {manifest.game!r} but was pushed to {slug!r}")
    if not manifest.files:
        raise ManifestError(
            "the build has no files, and installing it would empty every friend's folder; push the folder that holds the game"
        )
    notes, launch = check_notes(upload.notes), checked_launch(upload.launch, manifest)
    chunks = manifest.chunk_sizes()
    latest = await ctx.db.run(lambda s: patch_queries.latest_build(s, slug))
    previous = await asyncio.to_thread(parsed_manifest, latest.digest, latest.data) if latest else None
    # Marked used as they are checked, so a garbage collection running now keeps them for this build; the
    # previous build's chunks are kept by the collector while that build is in the catalog (commit_check.py).
    unvouched = await asyncio.to_thread(manifest.chunks_beyond, previous) if previous else chunks
    await _refuse_missing(ctx, [*unvouched, *await asyncio.to_thread(commit_check.set_aside, ctx.store, chunks)])
    known = [f.sha256 for f in previous.files] if previous else []
    bad = await asyncio.to_thread(commit_check.mismatched_files, ctx.store, manifest, known)
    if bad:
        raise ManifestError(
            f"{len(bad)} of the build's files are not what their chunks make (first: {bad[0]}): the "
            "manifest pairs them with another file's chunks; the build was rejected, push it again"
        )
    stored = await _stored_sizes(ctx, request.app[ANNOUNCER], chunks, unvouched, latest.digest if latest else "")
    digest = hashlib.sha256(data).hexdigest()  # parse refused bytes that are not the canonical form: the same digest
    signature = ctx.signer.sign(data)
    compressed = await asyncio.to_thread(compression.compress, data)
    await asyncio.to_thread(ctx.store.put, digest, compressed)
    await asyncio.to_thread(ctx.store.touch, [digest])  # it may be there already, from a build removed before

    async def add(vouched_by: str) -> tuple[queries.BuildRow, bool]:
        return await ctx.db.run(
            lambda s: queries.add_build(
                s,
                slug,
                manifest.version,
                digest,
                data,
                signature,
                manifest.total_size,
                len(manifest.files),
                len(chunks),
                sum(stored.values()),
                notes,
                launch,
                vouched_by,
            )
        )

    try:
        row, created = await add(latest.digest if latest else "")
    except queries.PreviousGone:  # removed during this commit: nothing vouches for its chunks now, so check all
        await _refuse_missing(ctx, list(chunks))
        row, created = await add("")
    request.app[COUNTERS].builds_published.inc()
    if created:
        await note(
            ctx,
            "push",
            who.user,
            slug,
            manifest.version,
            f"{count(len(manifest.files), 'file')}, {human_bytes(manifest.total_size)}",
        )
    answer = {**row.to_json(), "patch_job": "", "patches_coming": 0}
    try:
        answer["patch_job"], answer["patches_coming"] = await _queue_patches(ctx, slug, manifest)
    except QueueUnavailable as exc:  # the build is committed and installable; patches only save friends bytes
        log.error("build %s %s committed, but its patch job could not be queued: %s", slug, manifest.version, exc)
        answer["warning"] = (
            "the job queue is unavailable, so no patches into this build were queued; "
            "friends' update requests queue them once it is back"
        )
    if created:  # the same build pushed again is no news; its news is sized once its patches are made
        request.app[ANNOUNCER].published(Published(slug, manifest.version, digest, manifest, stored, str(answer["patch_job"])))
    return web.json_response(answer, status=201)


async def _stored_sizes(
    ctx: TrackerContext, announcer: Announcer, chunks: Mapping[str, int], unvouched: Mapping[str, int], previous: str
) -> dict[str, int]:
    """Every chunk's stored size: asked of the store for the chunks the previous build did not vouch for, the others
    as the previous build's commit found them, while this process remembers those (a stat, or on S3 a HEAD, of
    every chunk otherwise: 18-31 CPU s for 1.6 million on a local disk, bench/store_ops.py)."""
    known = announcer.stored_of(previous) if previous else None
    if known is None:
        return await asyncio.to_thread(ctx.store.sizes, chunks)
    found = await asyncio.to_thread(ctx.store.sizes, unvouched)

    def merged() -> dict[str, int]:
        hexes = list(chunks)
        before = known.many(hexes) if isinstance(known, StoredSizes) else [known.get(h, 0) for h in hexes]
        return {h: found.get(h) or old or chunks[h] for h, old in zip(hexes, before)}  # sizes are never 0

    return await asyncio.to_thread(merged)


async def _refuse_missing(ctx: TrackerContext, chunks: list[str]) -> None:
    """409 naming the chunks the store lacks; those it has are marked used (the garbage collector's grace)."""
    missing = await asyncio.to_thread(ctx.store.touch, chunks)
    if missing:
        raise Conflict(
            f"{len(missing)} of the build's chunks are not in the store; upload them, then commit again",
            {"missing_count": len(missing), "missing": missing[:MISSING_SHOWN]},
        )


async def _queue_patches(ctx: TrackerContext, slug: str, manifest: manifest_mod.Manifest) -> tuple[str, int]:
    """Queue the patches into the new build from the previous one and those friends hold; (job id, pairs)."""
    sources = await ctx.db.run(lambda s: patch_queries.patch_sources(s, slug, manifest.version))
    parsed = [await asyncio.to_thread(parsed_manifest, m.digest, m.data) for m in sources]  # the latest: parsed already
    pairs = patch_pairs(manifest, parsed)
    job = await asyncio.to_thread(ctx.jobs.enqueue_patches, slug, manifest.version)
    for source, target in pairs:
        ctx.patch_jobs.setdefault((source.sha256, target.sha256), job)
    return job, len(pairs)


async def remove_build(request: web.Request) -> web.Response:
    """Take a build out of the catalog; if it was the latest, the one before it is the latest again."""
    ctx = request.app[CONTEXT]
    who = admin(request)
    slug, version = request.match_info["slug"], request.match_info["version"]
    await ctx.db.run(lambda s: queries.remove_build(s, slug, version))
    await note(ctx, "build_removed", who.user, slug, version, "removed the build")
    answer = {"game": slug, "removed": version, "gc_job": ""}
    try:
        answer["gc_job"] = await asyncio.to_thread(ctx.jobs.enqueue_gc)
    except QueueUnavailable as exc:
        log.error("build %s %s removed, but the garbage collector could not be queued: %s", slug, version, exc)
        answer["warning"] = "the job queue is unavailable; the nightly collection will free the build's data"
    return web.json_response(answer)


async def edit_build(request: web.Request) -> web.Response:
    """Change a build's release notes, or its own launch command ("" = the game's)."""
    ctx = request.app[CONTEXT]
    admin(request)
    slug, version = request.match_info["slug"], request.match_info["version"]
    body = await json_body(request, {}, {"notes": str, "launch": str})
    changes: dict[str, str] = {}
    if "notes" in body:
        changes["notes"] = check_notes(body["notes"])
    if "launch" in body:
        data = await ctx.db.run(lambda s: queries.build_manifest_bytes(s, slug, version))
        manifest = await asyncio.to_thread(parsed_manifest, hashlib.sha256(data).hexdigest(), data)
        changes["launch"] = checked_launch(body["launch"], manifest)
    row = await ctx.db.run(lambda s: queries.edit_build(s, slug, version, changes))
    return web.json_response(row.to_json())


async def get_manifest(request: web.Request) -> web.Response:
    """The signed manifest; with `?from=<digest>` of a build of the game the friend holds, as a delta from it
    (`&delta=entries`: in the entries form, which a friend applies without holding either manifest whole)."""
    ctx = request.app[CONTEXT]
    looking = viewer(request)
    slug, version = request.match_info["slug"], request.match_info["version"]
    row, data, signature = await ctx.db.run(lambda s: queries.get_build(s, slug, version, looking))
    # Signed now, with the key of the moment: a friend verifies it without the whole manifest's bytes at hand.
    digest_signature = ctx.signer.sign(signing.manifest_digest(row.manifest_digest))
    base = request.query.get("from", "")
    if _DIGEST.match(base) and base != row.manifest_digest:
        held = await ctx.db.run(lambda s: queries.readable_builds(s, [base], looking))
        if held.get(base, ("", ""))[0] == slug:  # another game's, or one this friend may not see: send it whole

            async def manifests() -> tuple[bytes, bytes]:
                old = await ctx.db.run(lambda s: queries.build_manifest_bytes(s, slug, held[base][1]))
                return old, data

            form = manifest_delta.ENTRIES if request.query.get("delta") == manifest_delta.ENTRIES else ""
            delta = await ctx.manifest_deltas.delta(base, row.manifest_digest, manifests, form)
            return web.Response(
                body=delta,
                content_type=manifest_delta.CONTENT_TYPE,
                headers={
                    "X-Mist-Signature": signature,
                    "X-Mist-Digest": row.manifest_digest,
                    "X-Mist-Digest-Signature": digest_signature,
                    "X-Mist-Delta-From": base,
                },
            )
    response = web.Response(
        body=data,
        content_type="application/json",
        headers={
            "X-Mist-Signature": signature,
            "X-Mist-Digest": row.manifest_digest,
            "X-Mist-Digest-Signature": digest_signature,
        },
    )
    response.enable_compression()
    return response


def _session(request: web.Request) -> str:
    """The ticket session of the request's (already checked) login: ended with it (tracker/sessions.py)."""
    account = request[ACCOUNT]
    assert account is not None, "identity() let the request through, so its account exists"
    return request.app[CONTEXT].sessions.ticket_session(account)


async def read_ticket(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    looking = viewer(request)
    slug, version = request.match_info["slug"], request.match_info["version"]
    row, _, _ = await ctx.db.run(lambda s: queries.get_build(s, slug, version, looking))
    expires = int(ctx.now) + TICKET_LIFETIME
    ticket = Ticket(looking.user, READ, row.manifest_digest, expires, _session(request)).encode(ctx.signer)
    return web.json_response({"ticket": ticket, "expires": expires, "seeder_url": seeder_url(request)})


async def upload_ticket(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    who = admin(request)
    expires = int(ctx.now) + TICKET_LIFETIME
    ticket = Ticket(who.user, UPLOAD, "", expires, _session(request)).encode(ctx.signer)
    return web.json_response({"ticket": ticket, "expires": expires, "seeder_url": seeder_url(request)})


async def revoked_sessions(request: web.Request) -> web.Response:
    """Public: the ticket sessions ended lately (opaque ids), for seeders and friends to refuse, signed by the
    tracker's key so that no one between can make them serve a session the admin ended."""
    ctx = request.app[CONTEXT]
    payload = canonical_json({"sessions": await ctx.sessions.revoked(), "at": int(ctx.now)})
    return web.json_response(
        {"payload": payload.decode(), "signature": ctx.signer.sign(payload)}, headers={"Cache-Control": "no-store"}
    )


async def info(request: web.Request) -> web.Response:
    """Public: the key, and the hand-overs that lead a client or seeder pinned to an older key to it."""
    ctx = request.app[CONTEXT]
    return web.json_response(
        {
            "service": "mist-tracker",
            "public_key": ctx.signer.public_key,
            "key_fingerprint": fingerprint(ctx.signer.public_key),
            "key_handovers": [h.to_json() for h in ctx.handovers],
            "seeder_url": seeder_url(request),
        }
    )


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/info", info),
        web.get("/api/revoked-sessions", revoked_sessions),
        web.post("/api/games/{slug}/builds", commit_build),
        web.delete("/api/games/{slug}/builds/{version}", remove_build),
        web.patch("/api/games/{slug}/builds/{version}", edit_build),
        web.get("/api/games/{slug}/builds/{version}/manifest", get_manifest),
        web.post("/api/games/{slug}/builds/{version}/ticket", read_ticket),
        web.post("/api/upload-ticket", upload_ticket),
    ]
