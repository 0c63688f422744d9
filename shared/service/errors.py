"""Errors into HTTP answers, the same way for the tracker and the seeder: one middleware and the status table.

The pure core (shared/errors.py) says what went wrong and knows nothing of HTTP; this is where a kind of
error becomes a status. Each service's own layers translate what their libraries raise (SQLAlchemy in
tracker/db, Redis in tracker/jobs) into Mist's errors first, so this sees Mist's errors, aiohttp's HTTP
exceptions, a full disk (from any writer), or a bug (500, logged with its trace, no trace in the answer).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from shared.errors import (
    ChunkCorrupt,
    ChunkMissing,
    LocalProtocolError,
    ManifestError,
    MistError,
    RemoteProtocolError,
    StoreError,
    TicketError,
)
from shared.service.disk_space import DISK_FULL_MESSAGE, is_disk_full
from shared.service.observability import error_json

_STATUS: tuple[tuple[type[MistError], int], ...] = (
    (ManifestError, 422),
    (TicketError, 403),
    (ChunkMissing, 404),
    (ChunkCorrupt, 422),
    (RemoteProtocolError, 400),
    (LocalProtocolError, 500),
    (StoreError, 507),
)


def status_for(exc: MistError) -> int:
    """The HTTP status for a domain error: its own `status` if it names one, else by its kind; 400 for the rest."""
    explicit = getattr(exc, "status", None)
    if isinstance(explicit, int):
        return explicit
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return 400


def answer(exc: MistError) -> web.Response:
    """The JSON answer for a domain error: its message, its `detail` and its `headers` (Retry-After) if it has them."""
    headers = getattr(exc, "headers", None)
    return error_json(status_for(exc), str(exc), getattr(exc, "detail", None), headers if isinstance(headers, dict) else None)


def error_middleware(
    log: logging.Logger,
    *,
    on_error: Callable[[web.Request, MistError], None] | None = None,
    too_large: str = "",
    where: str = "server",
) -> Middleware:
    """The one place a service's exceptions become answers. `on_error` sees each domain error first (the seeder
    counts refused tickets); `too_large` words aiohttp's 413; `where` names the log in a 500's message."""

    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status >= 400 and exc.content_type != "application/json":
                return error_json(exc.status, too_large if exc.status == 413 and too_large else exc.reason)
            raise
        except LocalProtocolError:  # the service was about to send what its protocol forbids: its bug, not the caller's
            log.exception("a bug broke the protocol in %s %s", request.method, request.path)
            return error_json(500, f"internal error; the {where}'s log has the details")
        except MistError as exc:  # its own words first: a full store says "push again", the database's DiskFull more
            if on_error is not None:
                on_error(request, exc)
            return answer(exc)
        except Exception as exc:
            if is_disk_full(exc):  # a library's error (the job queue's SQLite, a file) that says the disk is full
                log.error("the disk is full in %s %s: %s", request.method, request.path, exc)
                return error_json(507, DISK_FULL_MESSAGE, {"disk_full": True})
            log.exception("unhandled error in %s %s", request.method, request.path)
            return error_json(500, f"internal error; the {where}'s log has the details")

    return errors
