"""Admin maintenance from the command line: run the store scrub and wait for its report."""

from __future__ import annotations

import asyncio
from typing import Any

from client.api import Api

POLL_SECONDS = 0.5


async def scrub_store(api: Api, wait: bool) -> dict[str, Any]:
    started = await api.call("POST", "/api/admin/scrub")
    status = {"job": started["job"], "done": False, "result": None}
    while wait and not status["done"]:
        await asyncio.sleep(POLL_SECONDS)  # the worker runs the job; the tracker only stores its result
        status = await api.call("GET", f"/api/admin/jobs/{started['job']}")
    return status
