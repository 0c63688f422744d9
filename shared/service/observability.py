"""Request ids, logs and per-request metrics, shared by the tracker and the seeder.

Every request gets an id: the caller's `X-Request-Id` when it is sane, else a
new one. It is echoed in the response header and in error bodies, and put on
every log line emitted while the request is handled (a context variable read
by a logging filter), so a user quoting it lets the admin find the lines.
Logs are one JSON object per line (`MIST_LOG_FORMAT=json`, the services'
default) or the human-readable lines the embedded server prints.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import os
import re
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from shared.service.metrics import HttpMetrics

FORMAT_ENV = "MIST_LOG_FORMAT"
HEADER = "X-Request-Id"
MAX_ID = 128
_SANE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*\Z")  # what tracing proxies send (UUIDs, hex, dotted)
ACCESS = logging.getLogger("mist.access")
ACCESS_FIELDS = ("client", "method", "path", "status", "bytes", "duration_ms")

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
    return web.json_response({"error": message, "detail": detail, "request_id": current_request_id()},
                             status=status, headers=headers)


# ---- logs ---------------------------------------------------------------------------------------------


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on each record (None outside requests)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, the access fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for name in ACCESS_FIELDS:
            if hasattr(record, name):
                line[name] = getattr(record, name)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        # JSON escapes the control characters; Unicode's line separators it leaves, and some readers split on them.
        return json.dumps(line, ensure_ascii=False, default=str).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


# Every control character (and Unicode's line and paragraph separators) as an escape: a value someone sent (a
# report's reason, a user name) can then never start a line of its own that reads like the server's.
_ESCAPES = {c: repr(chr(c))[1:-1] for c in (*range(0x20), 0x7F, 0x85, 0x2028, 0x2029)}


def one_line(text: str) -> str:
    return text.translate(_ESCAPES)


class TextFormatter(logging.Formatter):
    """The embedded server's lines: one per record (what was logged is escaped onto it), the request id at
    the end when there is one; only the server's own tracebacks take lines of their own below it."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{self.formatTime(record)} {record.name} {record.levelname} {one_line(record.getMessage())}"
        request_id = getattr(record, "request_id", None)
        if request_id:
            line += f" [request {one_line(str(request_id))}]"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


def configure_logging(default: str) -> str:
    """Log to stderr as MIST_LOG_FORMAT says (`json` or `text`; else `default`); return the format used.

    Access lines (one per request) are written in JSON only: a person watching the embedded
    server's terminal wants its welcome and its warnings, not every chunk fetch.
    """
    chosen = os.environ.get(FORMAT_ENV, "").strip().lower() or default
    if chosen not in ("json", "text"):
        raise SystemExit(f"Error: {FORMAT_ENV} must be 'json' or 'text' (got {chosen!r})")
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if chosen == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
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
            ACCESS.info("%s %s %s %d", request.remote, request.method, request.path, status, extra={
                "client": request.remote, "method": request.method, "path": request.path, "status": status, "bytes": size,
                "duration_ms": round(seconds * 1000, 3)})
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
