"""Admin jobs from the command line: start one on the tracker and wait for the worker to finish it."""

from __future__ import annotations

import asyncio
from typing import Any

from client.api import Api

POLL_SECONDS = 0.5


async def wait_for_job(api: Api, job: str, wait: bool) -> dict[str, Any]:
    """The job's status; with `wait`, once the worker has finished it."""
    status: dict[str, Any] = {"job": job, "done": False, "result": None}
    while wait and not status["done"]:
        await asyncio.sleep(POLL_SECONDS)  # the worker runs the job; the tracker only stores its result
        status = await api.call("GET", f"/api/admin/jobs/{job}")
    return status


async def scrub_store(api: Api, wait: bool) -> dict[str, Any]:
    started = await api.call("POST", "/api/admin/scrub")
    return await wait_for_job(api, started["job"], wait)


async def collect_garbage(api: Api, wait: bool) -> dict[str, Any]:
    started = await api.call("POST", "/api/admin/gc")
    return await wait_for_job(api, started["job"], wait)


async def remove_build(api: Api, game: str, version: str, wait: bool) -> dict[str, Any]:
    """Remove a build from the catalog; with `wait`, also until the garbage collector it started has finished."""
    removed = await api.call("DELETE", f"/api/games/{game}/builds/{version}")
    return {**removed, "gc": await wait_for_job(api, removed["gc_job"], wait)}


async def resync_steam(api: Api, game: str, wait: bool) -> dict[str, Any]:
    started = await api.call("POST", f"/api/games/{game}/resync-steam")
    status = await wait_for_job(api, started["job"], wait)
    return {**status, "game": await api.call("GET", f"/api/games/{game}")}
