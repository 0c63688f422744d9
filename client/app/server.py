"""The daemon's local server: one aiohttp application for the app's pages, its JSON API and the CLI's calls.

Two middlewares stand in front of every route: the guard (client/app/guard.py:
Host, Origin, then the token or the session cookie) and the error boundary,
the one place exceptions become answers: JSON under /api/, a page elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from client.app import api, guard, pages
from client.app.service import Service, SignInError
from client.errors import NotLoggedIn, ServerRefused, TrackerUnavailable
from shared.errors import MistError

if TYPE_CHECKING:
    from client.daemon import Daemon

log = logging.getLogger("mist.app")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SERVICE = web.AppKey("service", Service)
SESSIONS = web.AppKey("sessions", guard.Sessions)
PORT = web.AppKey("port", list)  # [the bound port], known once the site started
PUBLIC = ("/open", "/static/")  # the one-time address, and the stylesheet and icon of the "open Mist" page
SHUTDOWN_GRACE = 2.0


def static_folder() -> Path:
    return Path(str(resources.files("client.app") / "static"))


def status_for(exc: MistError) -> int:
    """The local server's status for a domain error: the tracker's own when it refused, else by kind."""
    if isinstance(exc, ServerRefused):
        return exc.status if 400 <= exc.status < 500 else 502
    if isinstance(exc, NotLoggedIn):
        return 401
    if isinstance(exc, TrackerUnavailable):
        return 503
    if isinstance(exc, SignInError):
        return 401 if exc.kind == "password" else 400 if exc.kind == "fingerprint" else 502
    return 409 if exc.__class__.__name__ in ("QueueError", "PlayError") else 400


def _is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    port = request.app[PORT][0]
    why = guard.refusal(request.host, request.headers.get("Origin"), request.headers.get("Sec-Fetch-Site"), port)
    if why is not None:
        return web.json_response({"error": why}, status=403 if request.host.lower() in guard.allowed_hosts(port) else 421)
    daemon = request.app[SERVICE].daemon
    if guard.token_matches(request.headers.get("Authorization"), daemon.token):
        request["via"] = "token"
    elif request.app[SESSIONS].valid(request.cookies.get(guard.COOKIE)):
        request["via"] = "cookie"
    elif not request.path.startswith(PUBLIC) and request.path != "/open":
        if _is_api(request):
            return web.json_response(
                {
                    "error": "this is Mist's local app; open it with `mist app`, or use the mist "
                    "command (its token is in daemon.json)"
                },
                status=401,
            )
        return pages.not_opened(request)
    response = await handler(request)
    for name, value in guard.SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except MistError as exc:
        status = status_for(exc)
        body = {"error": str(exc)}
        if isinstance(exc, SignInError):
            body["kind"] = exc.kind
        if _is_api(request):
            return web.json_response(body, status=status)
        return await pages.error_page(request, str(exc), status)
    except OSError as exc:
        from client.commandline import disk_error

        if _is_api(request):
            return web.json_response({"error": disk_error(exc)}, status=500)
        return await pages.error_page(request, disk_error(exc), 500)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("the app failed on %s %s", request.method, request.path)
        message = "Mist's daemon failed on this request; its log (stderr, or daemon.log in Mist's folder) has the details"
        if _is_api(request):
            return web.json_response({"error": message}, status=500)
        return await pages.error_page(request, message, 500)


class LocalServer:
    def __init__(self, daemon: "Daemon", stop: asyncio.Event) -> None:
        self.service = Service(daemon)
        self.stop = stop
        app = web.Application(middlewares=[_guard, _errors], client_max_size=1024 * 1024)
        app[SERVICE] = self.service
        app[SESSIONS] = guard.Sessions()
        app[PORT] = [0]
        app.add_routes(api.routes() + pages.routes())
        app.router.add_static("/static/", static_folder(), append_version=False)
        pages.setup(app)
        self.app = app
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_GRACE)

    def __repr__(self) -> str:
        return f"LocalServer({self.service!r})"

    async def start(self, port: int) -> int:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", port)
        await site.start()
        bound = int(self.runner.addresses[0][1])
        self.app[PORT][0] = bound
        return bound

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            await self.service.run(group)

    async def close(self) -> None:
        self.service.close()
        await self.runner.cleanup()
