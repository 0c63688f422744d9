"""The plan route: a client says what it holds and which files it must write; the tracker says how to get each.

The decision is the pure planner's (tracker/planner.py); this module gathers its
inputs (the builds the client holds, as compact indexes kept across requests
(shared/build_indexes.py), stored chunk sizes of the files it writes, known
patches and the chains they make),
makes quick zstd patches for same-file changes no patch exists for yet (so an
uncommon jump is served at once), and queues the smaller HDiffPatch patches
for them, which the plan reports as coming.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import replace
from typing import Any

from aiohttp import web

from shared import manifest as manifest_mod, patch
from shared.manifest import FileEntry, Manifest
from shared.plan_wire import MAX_STEPS
from shared.build_index import BuildIndex
from shared.build_indexes import SHARED, BuildIndexes
from shared.made_once import MadeOnce
from tracker.config import TrackerContext
from tracker.db import patches as patch_queries
from tracker.errors import BadRequest, QueueUnavailable
from tracker.jobs.patching import make_all
from tracker.planner import PatchOption, held_contents, patch_pairs, plan_update
from tracker.routes.catalog import viewer
from tracker.routes.web import CONTEXT, json_body

log = logging.getLogger("mist.tracker")

MAX_PLAN_BODY = 32 * 1024 * 1024  # a write list for a game of ~200k files
MAX_HELD = 64
QUICK_BUDGET = 256 * 1024 * 1024  # target bytes diffed while the client waits (~2 s at zstd -3's speed here)
QUICK_MAX_FILES = 256  # and files: each is rebuilt from the store and its patch written durably
CHAIN_BUILDS = 16  # a chain passes only through files of the game's last this many builds (each indexed to find them)
_DIGEST = re.compile(r"^[0-9a-f]{64}\Z")


PARSED_KEPT = 32
# And at most this many bytes of their JSON: a parsed manifest is about twice its JSON in Python objects, and
# 32 parsed 100 GB builds (124 MB of JSON, ~260 MB parsed, each) would be 8 GB. The newest is always kept.
PARSED_KEPT_BYTES = 128 * 1024 * 1024
_parsed: MadeOnce[str, tuple[Manifest, int]] = MadeOnce(lambda kept: kept[1], PARSED_KEPT_BYTES, PARSED_KEPT)
INDEXES: BuildIndexes = SHARED  # what plans read of builds: shared with every server of this process (keyed by digest)


async def build_index(ctx: TrackerContext, digest: str) -> BuildIndex:
    """A stored build's index; its manifest is read from the database only when the index is not kept."""
    return await INDEXES.index(digest, lambda: ctx.db.run(lambda s: patch_queries.manifest_data(s, digest)))


def parsed_manifest(digest: str, data: bytes) -> Manifest:
    """Parse a stored manifest once, for the tracker's parts that walk whole builds (the plan reads indexes)."""
    kept = _parsed.peek(digest)
    if kept is not None:
        return kept[0]
    found = manifest_mod.parse(data)
    _parsed.put(digest, (found, len(data)))
    return found


async def plan(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    looking = viewer(request)
    slug, version = request.match_info["slug"], request.match_info["version"]
    digest = await ctx.db.run(lambda s: patch_queries.build_digest(s, slug, version, looking))
    body = await json_body(
        request, {"have": list, "write": list}, {"contents": list, "steps": int, "bundles": bool}, limit=MAX_PLAN_BODY
    )
    have, write, contents = body["have"], body["write"], body.get("contents", [])
    steps = body.get("steps", 1)  # clients that predate chains apply one patch per file
    if not 1 <= steps <= MAX_STEPS:
        raise BadRequest(f"'steps' must be a whole number from 1 to {MAX_STEPS} (patches applied in turn per file)")
    if len(have) > MAX_HELD or not all(isinstance(d, str) and _DIGEST.match(d) for d in have):
        raise BadRequest(f"'have' must be at most {MAX_HELD} build digests (64 lowercase hex characters)")
    if len(contents) > len(write) or not all(isinstance(d, str) and _DIGEST.match(d) for d in contents):
        raise BadRequest("'contents' must be SHA-256s of files held here, at most one per file to write")
    if not all(isinstance(p, str) for p in write) or len(set(write)) != len(write):
        raise BadRequest("'write' must be a list of distinct file paths of the build")
    target = await build_index(ctx, digest)
    files = await asyncio.to_thread(target.files_at, write)  # the files to write only, made once for the request
    strange = next((p for p in write if p not in files), None)
    if strange is not None:
        raise BadRequest(f"{strange[:200]!r} is not a file of {slug} {version}")
    rows = await ctx.db.run(lambda s: patch_queries.held_builds(s, have, looking))
    held = [await build_index(ctx, m.digest) for m in rows]
    own = [m for m in rows if m.game == slug]
    if own and looking.user:
        await ctx.db.run(lambda s: patch_queries.record_install(s, looking.user, slug, own[-1].digest))
    coming = await _patch_on_demand(
        request, slug, version, target, [m for m, r in zip(held, rows) if r.game == slug], [r.digest for r in own], files
    )
    targets = {f.sha256 for f in files.values()}
    have_contents = held_contents(held, contents)
    # A client that holds no build and names no content (a friend's first install) has nothing a patch could
    # start from: the plan is chunks for every file, without the database's patch and bundle lookups.
    nothing_held = not rows and not contents
    options = [] if nothing_held else await ctx.db.run(lambda s: patch_queries.chain_options(s, targets, have_contents, steps))
    options = await _placed(ctx, slug, options, targets)
    sizes = {ref.sha256: ref.size for f in files.values() for ref in f.chunks}  # the chunks of the files to write
    stored = await asyncio.to_thread(ctx.store.sizes, sizes.keys())
    costs = {h: stored.get(h, n) for h, n in sizes.items()}  # a chunk the scrub quarantined: count it whole
    # Only a client that says it applies patch bundles is offered one (older ones would fetch its files by chunks).
    offer_bundles = body.get("bundles") and not nothing_held
    bundles = await ctx.db.run(lambda s: patch_queries.bundle_options(s, targets)) if offer_bundles else []
    decided = await asyncio.to_thread(plan_update, target, write, held, costs, options, contents, steps, bundles, files)
    return web.json_response(
        {
            "game": slug,
            "version": version,
            "digest": digest,
            "held": [{"game": m.game, "version": m.version} for m in rows],
            **decided.to_json(),
            "coming": coming,
        }
    )


async def _placed(ctx: TrackerContext, slug: str, options: list[PatchOption], targets: set[str]) -> list[PatchOption]:
    """Keep only the chain links whose intermediate content is a file of one of the game's recent builds, each named
    by that build's version: the client fetches the link with a ticket for that build, so the seeder serves it
    only to friends who may read that build, and a content shared with another game never leads into it."""
    wanted = {o.target for o in options} - targets
    if not wanted:
        return options
    found: dict[str, str] = {}
    for stored in await ctx.db.run(lambda s: patch_queries.recent_build_refs(s, slug, CHAIN_BUILDS)):
        build = await build_index(ctx, stored.digest)
        for content in wanted:
            if build.has_content(content):
                found.setdefault(content, stored.version)
        if len(found) == len(wanted):
            break
    return [
        o if o.target in targets else replace(o, build=found[o.target])
        for o in options
        if o.target in targets or o.target in found
    ]


async def _patch_on_demand(
    request: web.Request,
    slug: str,
    version: str,
    target: BuildIndex,
    sources: list[BuildIndex],
    digests: list[str],
    files: dict[str, FileEntry],
) -> list[dict[str, Any]]:
    """Quick zstd patches now for changed files nobody has patched yet; HDiffPatch ones queued, reported as coming."""
    ctx = request.app[CONTEXT]
    if not sources:  # no build of this game held: no file of it to patch from
        return []
    pairs = await asyncio.to_thread(patch_pairs, target, sources, list(files), files)
    if not pairs:
        return []
    done = await ctx.db.run(lambda s: patch_queries.attempted(s, {t.sha256 for _, t in pairs}))
    untried = [(s, t) for s, t in pairs if not any((s.sha256, t.sha256, a) in done for a in (patch.HDIFF, patch.ZSTD_DICT))]

    # The biggest files first (they save the most), recorded in one transaction: a plan must stay quick.
    untried = sorted(untried, key=lambda pair: pair[1].size, reverse=True)[:QUICK_MAX_FILES]
    # Friends who ask for the same new jump at once share one making of each patch: the first makes it,
    # the others wait for its rows instead of diffing the same files again.
    making = ctx.quick_patches
    theirs = {making[(s.sha256, t.sha256)] for s, t in untried if (s.sha256, t.sha256) in making}
    mine = [(s, t) for s, t in untried if (s.sha256, t.sha256) not in making]
    finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    reserved = list(mine)
    for s, t in reserved:
        making[(s.sha256, t.sha256)] = finished
    try:
        if reserved:
            # `done` was read before these were reserved: another plan may have made and recorded some since, and
            # dropped its reservation. It records before it lets go, so a second look now sees its rows.
            again = await ctx.db.run(lambda s: patch_queries.attempted(s, {t.sha256 for _, t in reserved}))
            done |= again
            mine = [
                (s, t) for s, t in reserved if not any((s.sha256, t.sha256, a) in done for a in (patch.HDIFF, patch.ZSTD_DICT))
            ]
        rows: list[Any] = []
        await asyncio.to_thread(make_all, ctx.store, mine, patch.ZSTD_DICT, lambda *row: rows.append(row), done, QUICK_BUDGET)
        if rows:
            await ctx.db.run(lambda s: patch_queries.record_patches(s, rows))
    finally:
        for s, t in reserved:
            making.pop((s.sha256, t.sha256), None)
        finished.set_result(None)
    if theirs:
        await asyncio.gather(*theirs)
    awaited = [(s, t) for s, t in pairs if (s.sha256, t.sha256, patch.HDIFF) not in done]
    queued = ctx.patch_jobs
    # A job that finished without making a pair's patch failed on it (a chunk missing from the store, a
    # crash): forget it, so the pair is queued again, and keep the map to jobs still running.
    for job in {queued[key] for s, t in awaited if (key := (s.sha256, t.sha256)) in queued}:
        if (await asyncio.to_thread(ctx.jobs.result, job))[0]:
            for key in [k for k, v in queued.items() if v == job]:
                del queued[key]
    fresh = [(s, t) for s, t in awaited if (s.sha256, t.sha256) not in queued]
    if fresh:
        try:
            job = await asyncio.to_thread(ctx.jobs.enqueue_patches, slug, version, digests, sorted({t.path for _, t in fresh}))
        except QueueUnavailable as exc:  # the plan stands without them: those files come as chunks
            log.error("patches for a jump to %s %s could not be queued: %s", slug, version, exc)
        else:
            for s, t in fresh:
                queued[(s.sha256, t.sha256)] = job
    return [{"path": t.path, "job": queued[(s.sha256, t.sha256)]} for s, t in awaited if (s.sha256, t.sha256) in queued]


def routes() -> list[web.RouteDef]:
    return [web.post("/api/games/{slug}/builds/{version}/plan", plan)]
