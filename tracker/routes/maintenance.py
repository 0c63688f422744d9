"""Admin maintenance routes: start the store scrub or the garbage collector now, and read any job's result."""

from __future__ import annotations

import asyncio

from aiohttp import web

from tracker.errors import NotFound
from tracker.routes.web import CONTEXT, admin


async def start_scrub(request: web.Request) -> web.Response:
    admin(request)
    job = await asyncio.to_thread(request.app[CONTEXT].jobs.enqueue_scrub)
    return web.json_response({"job": job}, status=202)


async def start_gc(request: web.Request) -> web.Response:
    admin(request)
    job = await asyncio.to_thread(request.app[CONTEXT].jobs.enqueue_gc)
    return web.json_response({"job": job}, status=202)


async def job_result(request: web.Request) -> web.Response:
    admin(request)
    job_id = request.match_info["job"]
    jobs = request.app[CONTEXT].jobs
    done, result = await asyncio.to_thread(jobs.result, job_id)
    if not done and not await asyncio.to_thread(jobs.known, job_id):
        raise NotFound(f"no job {job_id!r}; it may have finished more than a week ago")
    return web.json_response({"job": job_id, "done": done, "result": result})


def routes() -> list[web.RouteDef]:
    return [
        web.post("/api/admin/scrub", start_scrub),
        web.post("/api/admin/gc", start_gc),
        web.get("/api/admin/jobs/{job}", job_result),
    ]
