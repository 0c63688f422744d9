"""The games pages: the list and a new game; per game its details, builds with their figures, patches,
downloads, grants, removing a build or the game, and the `mistpipe push` command for the next build."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re

import aiohttp_jinja2
from aiohttp import web

from shared.errors import BuildInfoError
from shared.launch import MAX_LAUNCH, check_notes, parse_launch
from shared.manifest import SLUG_RE
from shared.wording import count
from tracker.admin import game_figures, notices, overview
from tracker.admin.address import public_url
from tracker.admin.forms import Form
from tracker.admin.session import admin_user
from tracker.db import activity, admin_views, patches as patch_queries, queries
from tracker.errors import BadRequest, Conflict
from tracker.errors import QueueUnavailable
from tracker.routes.activity import note
from tracker.routes.builds import checked_launch
from tracker.routes.catalog import MAX_DESCRIPTION, MAX_TITLE
from tracker.routes.updates import parsed_manifest
from tracker.routes.web import CONTEXT

log = logging.getLogger("mist.admin")
ADMIN = queries.Viewer("", True)
IMAGE_RE = re.compile(r"^https?://\S+\Z")
USER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")


async def enqueue_gc(request: web.Request) -> str:
    """Queue the garbage collector; "" if the queue is down (the nightly run frees the data then)."""
    try:
        return await asyncio.to_thread(request.app[CONTEXT].jobs.enqueue_gc)
    except QueueUnavailable as exc:
        log.error("the garbage collector could not be queued: %s", exc)
        return ""


async def list_games(request: web.Request, form: Form | None = None, status: int = 200) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    games = await ctx.db.run(lambda s: queries.list_games(s, ADMIN))
    return aiohttp_jinja2.render_template("games.html", request, {"games": games, "form": form or Form({})}, status=status)


async def create_game(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    form = await Form.read(request)
    slug = form.text(
        "slug",
        "the short name",
        max_length=64,
        pattern=SLUG_RE,
        hint="must be lowercase letters, digits and '-', like hollow-knight",
    )
    title = form.text("title", "the title", max_length=MAX_TITLE)
    private = form.flag("private")
    if form.ok:
        try:
            await ctx.db.run(lambda s: queries.add_game(s, slug, title, private))
        except Conflict:
            form.error("slug", f"there is a game {slug} already; pick another short name")
    if not form.ok:
        return await list_games(request, form, 400)
    await note(ctx, "game", admin_user(request).name, slug, summary=f"created {'private ' if private else ''}game {title}")
    raise notices.see(f"/admin/games/{slug}", "game-created", title)


async def _game_page(
    request: web.Request, slug: str, form: Form | None = None, status: int = 200, build_form: str = ""
) -> web.StreamResponse:
    """The game's page; `form` is a posted form to show again with its errors (of the build `build_form`'s
    notes form, if given)."""
    ctx = request.app[CONTEXT]
    game = await ctx.db.run(lambda s: queries.get_game(s, slug, ADMIN))
    stored, installed, downloads, granted, users = await ctx.db.run(
        lambda s: (
            admin_views.manifests(s, slug),
            admin_views.installs_by_version(s, slug),
            activity.downloads_by_version(s, slug),
            admin_views.granted_users(s, slug),
            queries.list_users(s),
        )
    )
    targets = set()
    for build in stored:
        targets |= {f.sha256 for f in parsed_manifest(build.digest, build.manifest).files}
    options = await ctx.db.run(lambda s: patch_queries.options_for(s, targets))
    figures = await asyncio.to_thread(game_figures.figures, ctx.store, stored, options)
    jobs = await overview.jobs_now(ctx, 100)
    coming = [w for w in (jobs.waiting or []) if w.task == "make_patches" and w.args[:1] == (slug,)]
    running = [j for j in jobs.running if j.task == "make_patches" and j.args[:1] == [slug]]
    by_version = {f.version: f for f in figures}
    latest = game.builds[-1].version if game.builds else None
    values = (
        form.values
        if form and not build_form
        else {
            "title": game.title,
            "description": game.description,
            "header_image": game.header_image,
            "steam_app_id": str(game.steam_app_id or ""),
            "private": "on" if game.private else "",
            "launch": game.launch,
        }
    )
    return aiohttp_jinja2.render_template(
        "game.html",
        request,
        {
            "game": game,
            "figures": by_version,
            "installed": installed,
            "downloads": downloads,
            "granted": granted,
            "grantable": [u["name"] for u in users if u["name"] not in granted and not u["admin"]],
            "coming": coming,
            "running": running,
            "errors": form.errors if form and not build_form else {},
            "values": values,
            "build_form": build_form,
            "build_values": form.values if form and build_form else {},
            "build_errors": form.errors if form and build_form else {},
            "url": public_url(request),
            "next_version": game_figures.next_version(latest),
        },
        status=status,
    )


async def show_game(request: web.Request) -> web.StreamResponse:
    return await _game_page(request, request.match_info["slug"])


async def edit_game(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    slug = request.match_info["slug"]
    form = await Form.read(request)
    changes: dict[str, object] = {
        "title": form.text("title", "the title", max_length=MAX_TITLE),
        "description": form.text("description", "the description", required=False, max_length=MAX_DESCRIPTION, multiline=True),
        "header_image": form.text(
            "header_image",
            "the header image",
            required=False,
            max_length=500,
            pattern=IMAGE_RE,
            hint="must be a web address like https://example.org/header.jpg",
        ),
        "steam_app_id": form.number("steam_app_id", "the Steam app id", 1, 2**31 - 1),
        "private": form.flag("private"),
        "launch": form.text("launch", "the launch command", required=False, max_length=MAX_LAUNCH),
    }
    if changes["launch"]:
        try:
            parse_launch(str(changes["launch"]))  # each build's files are checked when a friend's Play runs it
        except BuildInfoError as exc:
            form.error("launch", str(exc))
    if not form.ok:
        return await _game_page(request, slug, form, 400)
    current = await ctx.db.run(lambda s: queries.get_game(s, slug, ADMIN))
    # Only what the admin changed becomes "set by hand" (Steam never overwrites those).
    for name in ("title", "description", "header_image"):
        if changes[name] == getattr(current, name):
            del changes[name]
    sync = await ctx.db.run(lambda s: queries.edit_game(s, slug, changes))
    if sync:
        await asyncio.to_thread(ctx.jobs.enqueue_steam, slug)
    await note(ctx, "game", admin_user(request).name, slug, summary="edited the game's details")
    raise notices.see(f"/admin/games/{slug}", "steam-queued" if sync else "game-saved", slug)


async def fetch_steam(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    slug = request.match_info["slug"]
    if await ctx.db.run(lambda s: queries.steam_app(s, slug)) is None:
        raise Conflict(f"{slug} has no Steam app id yet; set one in its details first")
    await asyncio.to_thread(ctx.jobs.enqueue_steam, slug)
    raise notices.see(f"/admin/games/{slug}", "steam-queued", slug)


async def delete_game(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    slug = request.match_info["slug"]
    form = await Form.read(request)
    if form.raw("confirm").strip() != slug:
        form.error("confirm", f"type {slug} to delete the game and all its builds")
        return await _game_page(request, slug, form, 400)
    builds = await ctx.db.run(lambda s: admin_views.delete_game(s, slug))
    await note(ctx, "game", admin_user(request).name, slug, summary=f"deleted the game and its {count(builds, 'build')}")
    await enqueue_gc(request)
    raise notices.see("/admin/games", "game-deleted", slug)


async def remove_build(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    slug, version = request.match_info["slug"], request.match_info["version"]
    await ctx.db.run(lambda s: queries.remove_build(s, slug, version))
    await note(ctx, "build_removed", admin_user(request).name, slug, version, "removed the build")
    await enqueue_gc(request)
    raise notices.see(f"/admin/games/{slug}", "build-removed", version)


async def grant(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    slug = request.match_info["slug"]
    form = await Form.read(request)
    user = form.text("user", "the friend", max_length=64, pattern=USER_RE, hint="must be an account name")
    if not form.ok:
        return await _game_page(request, slug, form, 400)
    await ctx.db.run(lambda s: queries.set_grant(s, user, slug, True))
    await note(ctx, "grant", user, slug, summary=f"granted by {admin_user(request).name}")
    raise notices.see(f"/admin/games/{slug}", "granted", user)


async def revoke(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    slug, user = request.match_info["slug"], request.match_info["user"]
    await ctx.db.run(lambda s: queries.set_grant(s, user, slug, False))
    await note(ctx, "revoke", user, slug, summary=f"revoked by {admin_user(request).name}")
    raise notices.see(f"/admin/games/{slug}", "revoked", user)


async def edit_build(request: web.Request) -> web.StreamResponse:
    """A build's release notes and its own launch command (empty: the game's)."""
    ctx = request.app[CONTEXT]
    slug, version = request.match_info["slug"], request.match_info["version"]
    form = await Form.read(request)
    changes: dict[str, str] = {}
    try:
        changes["notes"] = check_notes(form.raw("notes"))
    except BuildInfoError as exc:
        form.error("notes", str(exc))
    data = await ctx.db.run(lambda s: queries.build_manifest_bytes(s, slug, version))
    manifest = await asyncio.to_thread(parsed_manifest, hashlib.sha256(data).hexdigest(), data)
    try:
        changes["launch"] = checked_launch(form.raw("launch"), manifest)
    except (BuildInfoError, BadRequest) as exc:
        form.error("launch", str(exc))
    if not form.ok:
        return await _game_page(request, slug, form, 400, build_form=version)
    await ctx.db.run(lambda s: queries.edit_build(s, slug, version, changes))
    await note(ctx, "game", admin_user(request).name, slug, version, "edited the build's release notes and launch command")
    raise notices.see(f"/admin/games/{slug}", "notes-saved", version)


def routes() -> list[web.RouteDef]:
    return [
        web.get("/games", list_games),
        web.post("/games", create_game),
        web.get("/games/{slug}", show_game),
        web.post("/games/{slug}", edit_game),
        web.post("/games/{slug}/steam", fetch_steam),
        web.post("/games/{slug}/delete", delete_game),
        web.post("/games/{slug}/builds/{version}", edit_build),
        web.post("/games/{slug}/builds/{version}/remove", remove_build),
        web.post("/games/{slug}/grants", grant),
        web.post("/games/{slug}/grants/{user}/revoke", revoke),
    ]
