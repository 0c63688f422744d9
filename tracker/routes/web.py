"""Request plumbing shared by the tracker's handlers: the error middleware, JSON bodies, identity."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from shared.service.errors import error_middleware
from shared.service.observability import error_json
from tracker.auth import Identity, read_access_token
from tracker.config import TrackerContext
from tracker.errors import BadRequest, Forbidden, PayloadTooLarge, Unauthorized
from tracker.sessions import Account

log = logging.getLogger("mist.tracker")
CONTEXT = web.AppKey("context", TrackerContext)
ACCOUNT: web.RequestKey[Account | None] = web.RequestKey("account")  # its account, as the session cache has it
MAX_JSON_BODY = 64 * 1024
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(status: int, message: str, detail: object = None, headers: dict[str, str] | None = None) -> web.Response:
    return error_json(status, message, detail, headers)


# The one place exceptions become responses (shared with the seeder): the database and the job queue have
# turned their libraries' errors into DatabaseUnavailable and QueueUnavailable already (tracker/db, tracker/jobs).
errors_middleware = error_middleware(log)


@web.middleware
async def sessions_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Look up the account of a request's access token (from the cache, or the database when it is stale), so that
    `identity` can refuse a token of an ended session without waiting on the database itself."""
    header = request.headers.get("Authorization", "")
    ctx = request.config_dict.get(CONTEXT)
    if ctx is not None and header.startswith("Bearer "):
        try:
            who = read_access_token(ctx.jwt_secret, header[7:], ctx.now)
        except Unauthorized:
            pass  # `identity` says so, on the routes that need a login
        else:
            request[ACCOUNT] = await ctx.sessions.account(who.user)
    return await handler(request)


Kind = type | tuple[type, ...]


async def json_body(
    request: web.Request,
    required: dict[str, Kind],
    optional: dict[str, Kind] | None = None,
    limit: int = MAX_JSON_BODY,
) -> dict[str, Any]:
    """Decode a JSON object body with exactly these fields and types, or raise BadRequest saying what is wrong."""
    optional = optional or {}
    too_large = PayloadTooLarge(f"request body is larger than {limit} bytes; this route takes a small JSON object")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    raw = bytearray()
    async for piece in request.content.iter_any():  # a chunked body declares no length: count as it comes
        raw += piece
        if len(raw) > limit:
            raise too_large
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:  # nested too deep to read: bad input
        raise BadRequest("request body must be a JSON object") from exc
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    unknown = set(body) - set(required) - set(optional)
    if unknown:
        raise BadRequest(
            f"unknown {'field' if len(unknown) == 1 else 'fields'}: {', '.join(sorted(unknown))}",
            {"allowed": sorted({*required, *optional})},
        )
    for name, kind in {**required, **optional}.items():
        if name not in body:
            if name in required:
                raise BadRequest(f"field {name!r} is required")
            continue
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if type(body[name]) not in kinds:
            names = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
            raise BadRequest(f"field {name!r} must be a {names}")
    return body


def identity(request: web.Request) -> Identity:
    """The caller, from the Bearer token; 401 without a valid one or when its session was ended, 403 when the
    account is disabled."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        raise Unauthorized("this needs a login; run `mist login` (or `mistpipe login`)")
    ctx = request.app[CONTEXT]
    who = read_access_token(ctx.jwt_secret, header[7:], ctx.now)
    if ACCOUNT not in request:
        raise RuntimeError("identity() needs sessions_middleware in the application")
    ctx.sessions.check(request[ACCOUNT], who.user, who.generation)
    return who


def admin(request: web.Request) -> Identity:
    who = identity(request)
    if not who.is_admin:
        raise Forbidden("this needs an admin account")
    return who
