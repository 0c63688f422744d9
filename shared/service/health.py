"""`GET /healthz`: whether this service can do its work now, cheaply enough to be asked every few seconds.

Each part is checked with a trivial operation under a time limit; the answer
is 200 `{"ok": true, "pid": N, <part>: "ok", ...}` or 503 with each failing part's reason.
The process id tells apart the seeder processes that share one port.
No login: a load balancer or `docker compose` asks it, and it tells nothing private.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from aiohttp import web

from shared.errors import MistError

CHECK_SECONDS = 3.0
Check = Callable[[], object]  # blocking; raises a MistError saying what is wrong


async def _outcome(check: Check) -> str:
    try:
        await asyncio.wait_for(asyncio.to_thread(check), CHECK_SECONDS)
    except TimeoutError:
        return f"no answer within {CHECK_SECONDS:.0f} s"
    except MistError as exc:
        return str(exc)
    return "ok"


async def report(checks: dict[str, Check]) -> web.Response:
    names = list(checks)
    outcomes = await asyncio.gather(*(_outcome(checks[name]) for name in names))
    body: dict[str, object] = dict(zip(names, outcomes))
    ok = all(outcome == "ok" for outcome in outcomes)
    return web.json_response({"ok": ok, "pid": os.getpid(), **body}, status=200 if ok else 503)


def route(checks: dict[str, Check]) -> web.RouteDef:
    """GET /healthz running these checks (part name -> check) at once."""

    async def healthz(_request: web.Request) -> web.Response:
        return await report(checks)

    return web.get("/healthz", healthz)
