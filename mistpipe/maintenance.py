"""Admin jobs from the command line: start one on the tracker and wait for the worker to finish it."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from typing import Any

from client.api import Api

POLL_SECONDS = 0.5
NOTICE_AFTER = 5.0


def _notice(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def wait_for_job(
    api: Api, job: str, wait: bool, notice: Callable[[str], None] = _notice, first_look: bool = False
) -> dict[str, Any]:
    """The job's status; with `wait`, once the worker has finished it; with `first_look`, asked at once.

    Only a worker runs jobs: if none runs (the services started apart, without `mist-worker`), this would
    wait in silence, so after a few seconds it says what it is waiting for and what runs it.
    """
    status: dict[str, Any] = {"job": job, "done": False, "result": None}
    started = time.monotonic()
    told = False
    if first_look:
        status = await api.call("GET", f"/api/admin/jobs/{job}")
    while wait and not status["done"]:
        await asyncio.sleep(POLL_SECONDS)  # the worker runs the job; the tracker only stores its result
        status = await api.call("GET", f"/api/admin/jobs/{job}")
        if not told and not status["done"] and time.monotonic() - started > NOTICE_AFTER:
            notice(
                f"still waiting for job {job}: the worker runs it (mist-server starts one; "
                "services run apart need `mist-worker --data DIR`). Ctrl-C stops waiting, not the job."
            )
            told = True
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
    waits = wait and bool(removed["gc_job"])  # no job when the queue was down: the nightly run collects
    return {**removed, "gc": await wait_for_job(api, removed["gc_job"], waits)}


async def resync_steam(api: Api, game: str, wait: bool) -> dict[str, Any]:
    started = await api.call("POST", f"/api/games/{game}/resync-steam")
    status = await wait_for_job(api, started["job"], wait)
    return {**status, "game": await api.call("GET", f"/api/games/{game}")}
