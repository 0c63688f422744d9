"""Request ids, logs and per-request metrics, shared by the tracker and the seeder.

Every request gets an id: the caller's `X-Request-Id` when it is sane, else a
new one. It is echoed in the response header and in error bodies, and put on
every log line emitted while the request is handled (a context variable read
by a logging filter), so a user quoting it lets the admin find the lines.
Logs are one JSON object per line (`MIST_LOG_FORMAT=json`, the services'
default) or the human-readable lines the embedded server prints (shared/logs.py,
which the friends' daemon uses too).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from shared.logs import log_to
from shared.service.metrics import HttpMetrics

HEADER = "X-Request-Id"
MAX_ID = 128
_SANE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*\Z")  # what tracing proxies send (UUIDs, hex, dotted)
ACCESS = logging.getLogger("mist.access")

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("mist_request_id", default=None)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def current_request_id() -> str | None:
    """The id of the request being handled in this task (or thread it started), if any."""
    return _current.get()


def sane_request_id(value: str | None) -> str | None:
    """A caller's id if it is safe to log and echo (bounded, no spaces, quotes or control characters)."""
    if value and len(value) <= MAX_ID and _SANE_ID.match(value):
        return value
    return None


def new_request_id() -> str:
    return secrets.token_hex(8)


def error_json(status: int, message: str, detail: object = None, headers: dict[str, str] | None = None) -> web.Response:
    """The JSON error body every service answers with; it carries the request id for the user to quote."""
    return web.json_response(
        {"error": message, "detail": detail, "request_id": current_request_id()}, status=status, headers=headers
    )


# ---- logs ---------------------------------------------------------------------------------------------


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on each record (None outside requests)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        return True


def configure_logging(chosen: str) -> str:
    """Log to stderr in `chosen` (`json` or `text`: the service's settings say which); return it.

    Access lines (one per request) are written in JSON only: a person watching the embedded
    server's terminal wants its welcome and its warnings, not every chunk fetch.
    """
    log_to(chosen, filters=[RequestIdFilter()])
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # ours is mist.access
    ACCESS.setLevel(logging.INFO if chosen == "json" else logging.WARNING)
    return chosen


# ---- the middleware -----------------------------------------------------------------------------------


def _route(request: web.Request) -> str:
    """The route's template (`/api/games/{slug}`), so metrics have one series per route, not per URL."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def observe(http: HttpMetrics) -> Middleware:
    """The outermost middleware of a service's root application: request id, access line, HTTP metrics."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request_id = sane_request_id(request.headers.get(HEADER)) or new_request_id()
        token = _current.set(request_id)
        started = time.perf_counter()
        status, size = 500, 0
        try:
            response = await handler(request)
            status = response.status
            if not response.prepared:
                response.headers[HEADER] = request_id  # a prepared one got it from echo_request_id
            # A streamed answer counts the length it promised (the seeder's sendfile packs); a WebSocket's traffic is not counted.
            size = 0 if isinstance(response, web.WebSocketResponse) else response.content_length or 0
            return response
        except web.HTTPException as exc:  # the router's 404/405, or one a sub-application let through
            exc.headers[HEADER] = request_id
            status, size = exc.status, len(exc.body) if isinstance(exc.body, bytes) else 0
            raise
        except asyncio.CancelledError:
            status = 499  # the client went away first (nginx's number for it), not a server error
            raise
        finally:
            seconds = time.perf_counter() - started
            http.observe(_route(request), request.method, status, size, seconds)
            ACCESS.info(
                "%s %s %s %d",
                request.remote,
                request.method,
                request.path,
                status,
                extra={
                    "client": request.remote,
                    "method": request.method,
                    "path": request.path,
                    "status": status,
                    "bytes": size,
                    "duration_ms": round(seconds * 1000, 3),
                },
            )
            _current.reset(token)

    return middleware


async def echo_request_id(_request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: a response a handler sends itself (a WebSocket) names its request id too."""
    request_id = current_request_id()
    if request_id is not None and HEADER not in response.headers:
        response.headers[HEADER] = request_id


def install(app: web.Application) -> None:
    """Echo request ids on `app`'s responses (its sub-applications' included)."""
    app.on_response_prepare.append(echo_request_id)
