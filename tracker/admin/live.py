"""Server-Sent Events for the parts of pages that change by themselves: the jobs and the friends online.

One stream per open page (`GET /admin/events`); each named event carries the part's new HTML, sent only
when it changed, and htmx's SSE extension swaps it in. Without script the pages still show the state as
of their loading. Streams end when the server stops, so a shutdown never waits on an open tab.
"""

from __future__ import annotations

import asyncio

import aiohttp_jinja2
from aiohttp import web

from tracker.admin import overview
from tracker.routes.web import CONTEXT

INTERVAL = 2.0  # seconds between looks: the job log is in the database, the worker does not call us
HEARTBEAT = 15.0
STOPPING = web.AppKey("admin_live_stopping", asyncio.Event)


def frame(event: str, html: str) -> bytes:
    """One SSE message: the event's name and its data, line by line."""
    lines = "".join(f"data: {line}\n" for line in html.splitlines() or [""])
    return f"event: {event}\n{lines}\n".encode()


async def _parts(request: web.Request) -> dict[str, str]:
    jobs = await overview.jobs_now(request.app[CONTEXT], 100)
    return {
        "jobs": aiohttp_jinja2.render_string("parts/jobs_live.html", request, {"jobs": jobs}),
        "jobs_table": aiohttp_jinja2.render_string("parts/jobs_table.html", request, {"jobs": jobs}),
        "online": aiohttp_jinja2.render_string("parts/online.html", request, {"online": overview.online(request)}),
    }


async def events(request: web.Request) -> web.StreamResponse:
    stopping = request.app[STOPPING]
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    sent: dict[str, str] = {}
    quiet = 0.0
    try:
        while not stopping.is_set():
            for name, html in (await _parts(request)).items():
                if sent.get(name) != html:
                    await response.write(frame(name, html))
                    sent[name] = html
                    quiet = 0.0
            if quiet >= HEARTBEAT:
                await response.write(b": still here\n\n")
                quiet = 0.0
            try:
                async with asyncio.timeout(INTERVAL):
                    await stopping.wait()
            except TimeoutError:
                quiet += INTERVAL
    except ConnectionError:
        pass  # the page was closed
    return response


async def stop_streams(app: web.Application) -> None:
    app[STOPPING].set()


def routes() -> list[web.RouteDef]:
    return [web.get("/events", events)]
