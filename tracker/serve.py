"""Running an aiohttp application until interrupted, with uvloop where it is installed."""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Callable

from aiohttp import web

from tracker.observability import configure_logging


def install_uvloop() -> bool:
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


def run(app: web.Application, host: str, port: int, on_ready: Callable[[], None] | None = None,
        log_format: str = "json") -> None:
    """Serve until SIGINT or SIGTERM; `on_ready` runs once the port is really listening (tests wait for it).

    Logs go to stderr in `log_format` unless MIST_LOG_FORMAT says otherwise.
    """
    configure_logging(log_format)
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
