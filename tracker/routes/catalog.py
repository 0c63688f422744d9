"""The catalog: games and the builds of each, as the `ls` commands show them."""

from __future__ import annotations

import asyncio
import re

from aiohttp import web

from shared.launch import parse_launch
from shared.manifest import SLUG_RE
from tracker.db import queries
from tracker.errors import BadRequest, Conflict
from tracker.routes.activity import note
from tracker.routes.web import CONTEXT, admin, identity, json_body

MAX_TITLE = 200
MAX_DESCRIPTION = 2000


def viewer(request: web.Request) -> queries.Viewer:
    who = identity(request)
    return queries.Viewer(who.user, who.is_admin)


async def list_games(request: web.Request) -> web.Response:
    looking = viewer(request)
    games = await request.app[CONTEXT].db.run(lambda s: queries.list_games(s, looking))
    return web.json_response({"games": [g.to_json() for g in games]})


async def show_game(request: web.Request) -> web.Response:
    looking = viewer(request)
    slug = request.match_info["slug"]
    game = await request.app[CONTEXT].db.run(lambda s: queries.get_game(s, slug, looking))
    return web.json_response(game.to_json())


async def new_game(request: web.Request) -> web.Response:
    admin(request)
    body = await json_body(request, {"slug": str, "title": str}, {"private": bool})
    slug, title = body["slug"], _title(body["title"])
    if not SLUG_RE.match(slug):
        raise BadRequest(f"game slug must be lowercase letters, digits and '-', up to 64, like 'hollow' (got {slug!r})")
    private = body.get("private", False)
    await request.app[CONTEXT].db.run(lambda s: queries.add_game(s, slug, title, private))
    return web.json_response({"slug": slug, "title": title, "private": private}, status=201)


async def grant(request: web.Request) -> web.Response:
    who = admin(request)
    slug = request.match_info["slug"]
    body = await json_body(request, {"user": str})
    await request.app[CONTEXT].db.run(lambda s: queries.set_grant(s, body["user"], slug, True))
    await note(request.app[CONTEXT], "grant", body["user"], slug, summary=f"granted by {who.user}")
    return web.json_response({"game": slug, "user": body["user"], "granted": True})


async def revoke(request: web.Request) -> web.Response:
    who = admin(request)
    slug, user = request.match_info["slug"], request.match_info["user"]
    await request.app[CONTEXT].db.run(lambda s: queries.set_grant(s, user, slug, False))
    await note(request.app[CONTEXT], "revoke", user, slug, summary=f"revoked by {who.user}")
    return web.json_response({"game": slug, "user": user, "granted": False})


async def edit_game(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    admin(request)
    slug = request.match_info["slug"]
    body = await json_body(
        request,
        {},
        {
            "title": str,
            "description": str,
            "header_image": str,
            "steam_app_id": (int, type(None)),
            "private": bool,
            "launch": str,
        },
    )
    if "title" in body:
        body["title"] = _title(body["title"])
    if "launch" in body:
        body["launch"] = body["launch"].strip()
        if body["launch"]:
            parse_launch(body["launch"])  # each build's files are checked when Play runs it
    if len(body.get("description", "")) > MAX_DESCRIPTION:
        raise BadRequest(f"description must be at most {MAX_DESCRIPTION} characters")
    image = body.get("header_image", "")
    if image and (not image.startswith(("https://", "http://")) or len(image) > 500):
        raise BadRequest("header_image must be a web address (https://...) of at most 500 characters")
    app_id = body.get("steam_app_id")
    if app_id is not None and not 0 < app_id < 2**31:
        raise BadRequest(f"steam_app_id must be a positive number like 367520 (got {app_id})")
    sync = await ctx.db.run(lambda s: queries.edit_game(s, slug, body))
    job = await asyncio.to_thread(ctx.jobs.enqueue_steam, slug) if sync else None
    game = await ctx.db.run(lambda s: queries.get_game(s, slug, queries.Viewer("", True)))
    return web.json_response({**game.to_json(), "job": job})


async def resync_steam(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    admin(request)
    slug = request.match_info["slug"]
    if await ctx.db.run(lambda s: queries.steam_app(s, slug)) is None:
        raise Conflict(f"{slug} has no Steam app id; set one with `mistpipe edit {slug} --steam-app-id N`")
    return web.json_response({"job": await asyncio.to_thread(ctx.jobs.enqueue_steam, slug)}, status=202)


def _title(raw: str) -> str:
    title = raw.strip()
    if not title or len(title) > MAX_TITLE or re.search(r"[\x00-\x1f\x7f]", title):
        raise BadRequest(f"game title must be 1-{MAX_TITLE} printable characters")
    return title


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/games", list_games),
        web.post("/api/games", new_game),
        web.get("/api/games/{slug}", show_game),
        web.patch("/api/games/{slug}", edit_game),
        web.post("/api/games/{slug}/resync-steam", resync_steam),
        web.post("/api/games/{slug}/grants", grant),
        web.delete("/api/games/{slug}/grants/{user}", revoke),
    ]
