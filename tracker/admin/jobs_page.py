"""The jobs page: waiting, running (patch jobs with their progress), done and failed with the error; retry."""

from __future__ import annotations

import asyncio
import json

import aiohttp_jinja2
from aiohttp import web

from tracker.admin import notices, overview
from tracker.admin.session import admin_user
from tracker.db import job_log
from tracker.errors import Conflict
from tracker.jobs.queue import Jobs
from tracker.routes.activity import note
from tracker.routes.web import CONTEXT


async def page(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    jobs = await overview.jobs_now(ctx, 100)
    return aiohttp_jinja2.render_template("jobs.html", request, {"jobs": jobs})


def requeue(jobs: Jobs, row: job_log.JobRow) -> str:
    """Queue the same work again: the same task with the same arguments (the nightly ones as their on-demand twins)."""
    args = row.args
    if row.task in ("scrub_store", "nightly_scrub"):
        return jobs.enqueue_scrub()
    if row.task in ("collect_garbage", "nightly_gc"):
        return jobs.enqueue_gc()
    if row.task == "sync_steam" and len(args) == 1:
        return jobs.enqueue_steam(str(args[0]))
    if row.task == "make_patches" and len(args) == 4:
        return jobs.enqueue_patches(str(args[0]), str(args[1]), args[2], args[3])
    if row.task == "post_news" and args:
        return jobs.enqueue_news(str(args[0]))
    raise Conflict(f"a {row.task or 'queued'} job cannot be retried from here")


async def retry(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    job_id = request.match_info["job"]
    row = await ctx.db.run(lambda s: job_log.get(s, job_id))
    if row is None:
        raise web.HTTPNotFound(reason=f"no job {job_id} in the job log")
    if row.state != job_log.FAILED:
        raise Conflict(f"job {job_id} is {row.state}; only a failed job can be retried")
    new_id = await asyncio.to_thread(requeue, ctx.jobs, row)
    await ctx.db.run(lambda s: job_log.mark_retried(s, job_id, new_id))
    await note(ctx, "job", admin_user(request).name, summary=f"retried {row.task} job {job_id} as {new_id}")
    raise notices.see("/admin/jobs", "retried", new_id)


def describe(task: str, args: list[object] | tuple[object, ...]) -> str:
    """A job's arguments in words, for the tables."""
    if task == "make_patches" and len(args) >= 2:
        return f"into {args[0]} {args[1]}"
    if task == "sync_steam" and args:
        return f"for {args[0]}"
    if task == "post_news" and args:
        return json.dumps(args[0])[:80]
    return ""


def routes() -> list[web.RouteDef]:
    return [web.get("/jobs", page), web.post("/jobs/{job}/retry", retry)]
