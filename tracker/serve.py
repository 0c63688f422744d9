"""Running an aiohttp application until interrupted, with uvloop where it is installed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiohttp import web


def install_uvloop() -> bool:
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


def run(app: web.Application, host: str, port: int, on_ready: Callable[[], None] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    install_uvloop()

    async def ready(_app: web.Application) -> None:
        if on_ready:
            on_ready()

    app.on_startup.append(ready)
    web.run_app(app, host=host, port=port, print=None, access_log=None, handle_signals=True)
