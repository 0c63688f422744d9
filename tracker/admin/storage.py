"""The storage page: chunks, manifests and patches counted and sized, what a garbage collection would free
now (a dry run) with a button to run it, and the last scrub with its findings, with a button to run one."""

from __future__ import annotations

import asyncio

import aiohttp_jinja2
from aiohttp import web

from tracker.admin import notices, overview
from tracker.admin.games import enqueue_gc
from tracker.db import job_log
from tracker.jobs.gc import dry_run
from tracker.routes.web import CONTEXT

SCRUBS = ("scrub_store", "nightly_scrub")
COLLECTIONS = ("collect_garbage", "nightly_gc")


async def page(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    figures = await overview.store_figures(ctx)
    would = await asyncio.to_thread(
        dry_run, ctx.db, ctx.store, ctx.settings.gc_grace
    )  # object times are the disk's: wall-clock time
    scrubs, collections = await ctx.db.run(lambda s: (job_log.recent(s, 5, SCRUBS), job_log.recent(s, 5, COLLECTIONS)))
    queued = await asyncio.to_thread(overview.waiting, ctx)
    return aiohttp_jinja2.render_template(
        "storage.html",
        request,
        {
            "store": figures,
            "would": would,
            "scrubs": scrubs,
            "collections": collections,
            "scrub_waiting": any(w.task in SCRUBS for w in queued or []),
            "gc_waiting": any(w.task in COLLECTIONS for w in queued or []),
        },
    )


async def run_gc(request: web.Request) -> web.StreamResponse:
    job = await enqueue_gc(request)
    if not job:
        raise web.HTTPServiceUnavailable(reason="the job queue does not answer; nothing was started, try again soon")
    raise notices.see("/admin/storage", "gc-queued", job)


async def run_scrub(request: web.Request) -> web.StreamResponse:
    job = await asyncio.to_thread(request.app[CONTEXT].jobs.enqueue_scrub)
    raise notices.see("/admin/storage", "scrub-queued", job)


def routes() -> list[web.RouteDef]:
    return [web.get("/storage", page), web.post("/storage/gc", run_gc), web.post("/storage/scrub", run_scrub)]
