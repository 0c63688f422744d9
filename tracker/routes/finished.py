"""A friend's finished install or update: logged, counted, and remembered as the build that friend holds.

The patch job of the next push makes patches from every build friends hold
(tracker/db/patches.py, `patch_sources`), so this record is what lets the
first update after a push be the smallest one. It comes over plain HTTP right
after the client's swap, with or without a daemon and whether or not any
friend was online; the swarm socket's `tally` (older clients) lands in the
same place.
"""

from __future__ import annotations

from aiohttp import web

from tracker.counters import COUNTERS
from tracker.db import activity, queries
from tracker.errors import BadRequest, NotFound
from tracker.routes.catalog import viewer
from tracker.routes.web import CONTEXT, json_body

MAX_TALLY_BYTES = 2**40  # one download of one build: far above any game
MAX_TALLY_CHUNKS = 2**32


def check_counts(peer_bytes: int, peer_chunks: int, seeder_bytes: int) -> None:
    """The three figures a client reports, within bounds and agreeing with each other."""
    for name, value, limit in (
        ("bytes_from_peers", peer_bytes, MAX_TALLY_BYTES),
        ("chunks_from_peers", peer_chunks, MAX_TALLY_CHUNKS),
        ("bytes_from_seeder", seeder_bytes, MAX_TALLY_BYTES),
    ):
        if not 0 <= value <= limit:
            raise BadRequest(f"field {name!r} must be a whole number from 0 to {limit}")
    if peer_chunks > peer_bytes or (peer_bytes > 0) != (peer_chunks > 0):
        raise BadRequest("'chunks_from_peers' and 'bytes_from_peers' disagree (every chunk has at least one byte)")


async def record(
    app: web.Application, user: str, game: str, version: str, digest: str, peer_bytes: int, peer_chunks: int, seeder_bytes: int
) -> None:
    """Log the download, note the build as held by `user`, and count it for /metrics."""
    ctx, counters = app[CONTEXT], app[COUNTERS]
    now = ctx.now
    await ctx.db.run(lambda s: activity.record_download(s, user, game, version, digest, peer_bytes, seeder_bytes, now))
    counters.tallies.inc()
    counters.peer_chunks.inc(peer_chunks)
    counters.peer_bytes.inc(peer_bytes)
    counters.seeder_bytes.inc(seeder_bytes)


async def installed(request: web.Request) -> web.Response:
    """POST /api/games/{slug}/builds/{version}/installed: this friend now holds that build."""
    ctx = request.app[CONTEXT]
    looking = viewer(request)
    slug, version = request.match_info["slug"], request.match_info["version"]
    await ctx.db.run(lambda s: queries.get_build(s, slug, version, looking))  # 404 before any word on the body
    body = await json_body(
        request, {"digest": str}, {"bytes_from_peers": int, "chunks_from_peers": int, "bytes_from_seeder": int}
    )
    digest = body["digest"]
    readable = await ctx.db.run(lambda s: queries.readable_builds(s, [digest], looking))
    if readable.get(digest) != (slug, version):
        raise NotFound(
            f"{slug} {version} is not the build {digest[:12]} (removed, pushed again, or not yours to see); nothing was recorded",
            {"missing": "version", "game": slug},
        )
    peer_bytes, peer_chunks = body.get("bytes_from_peers", 0), body.get("chunks_from_peers", 0)
    seeder_bytes = body.get("bytes_from_seeder", 0)
    check_counts(peer_bytes, peer_chunks, seeder_bytes)
    if looking.user:
        await record(request.app, looking.user, slug, version, digest, peer_bytes, peer_chunks, seeder_bytes)
    return web.json_response({"game": slug, "version": version, "digest": digest, "recorded": bool(looking.user)})


def routes() -> list[web.RouteDef]:
    return [web.post("/api/games/{slug}/builds/{version}/installed", installed)]
