"""The activity log page (filter by user, game and kind), friends online now, and the log's pruning."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import aiohttp_jinja2
from aiohttp import web

from tracker.admin import overview
from tracker.db import activity, job_log
from tracker.routes.web import CONTEXT

log = logging.getLogger("mist.admin")
PRUNE_EVERY = 3600.0
KIND_GROUPS = {
    "": ("everything", ()),
    "logins": ("sign-ins", ("login", "login_failed")),
    "downloads": ("installs and updates", ("install", "update")),
    "pushes": ("pushes and removals", ("push", "build_removed")),
    "access": ("grants and accounts", ("grant", "revoke", "user", "invitation", "game")),
    "reports": ("peer reports", ("peer_report",)),
    "jobs": ("jobs", ("job", "job_failed")),
}


async def page(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    user = request.query.get("user", "").strip()[:64]
    game = request.query.get("game", "").strip()[:64]
    group = request.query.get("kind", "")
    kinds = KIND_GROUPS.get(group, KIND_GROUPS[""])[1]
    events = await ctx.db.run(lambda s: activity.recent(s, user, game, kinds, limit=300))
    return aiohttp_jinja2.render_template(
        "activity.html",
        request,
        {
            "events": events,
            "user": user,
            "game": game,
            "kind": group if group in KIND_GROUPS else "",
            "groups": KIND_GROUPS,
            "online": overview.online(request),
            "retention": ctx.settings.activity_days,
        },
    )


def prune_now(request_app: web.Application) -> int:
    ctx = request_app[CONTEXT]
    days, now = ctx.settings.activity_days, ctx.now
    return ctx.db.call(lambda s: activity.prune(s, now, days) + job_log.prune(s, now, days))


async def pruning(app: web.Application) -> AsyncIterator[None]:
    """Forget activity older than the retention: at start, then hourly, while the site runs."""

    async def loop() -> None:
        while True:
            try:
                removed = await asyncio.to_thread(prune_now, app)
                if removed:
                    log.info("activity log: forgot %d event(s) older than %g days", removed, app[CONTEXT].settings.activity_days)
            except Exception as exc:  # the database restarting: try again next hour
                log.warning("activity log not pruned: %s", exc)
            await asyncio.sleep(PRUNE_EVERY)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass


def routes() -> list[web.RouteDef]:
    return [web.get("/activity", page)]
