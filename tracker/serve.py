"""Running an aiohttp application until interrupted, with uvloop where it is installed."""

from __future__ import annotations

import asyncio
import errno
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
    """Serve until SIGINT or SIGTERM; `on_ready` runs once the port is really listening (tests wait for it)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    install_uvloop()

    async def serve() -> None:
        runner = web.AppRunner(app, access_log=None, handle_signals=True)
        await runner.setup()
        try:
            try:
                await web.TCPSite(runner, host, port).start()
            except OSError as exc:
                reason = "another program has it" if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc)
                raise SystemExit(f"Error: cannot listen on {host}:{port} ({reason}); stop it or choose another --port") from None
            if on_ready:
                on_ready()
            await asyncio.Event().wait()  # until a signal raises GracefulExit
        finally:
            await runner.cleanup()

    try:
        asyncio.run(serve())
    except (web.GracefulExit, KeyboardInterrupt):
        pass
