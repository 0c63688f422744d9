"""Accounts: the first admin, login, token refresh and user provisioning by the admin."""

from __future__ import annotations

import asyncio
import re
import secrets
from datetime import datetime, timezone
from pathlib import Path

from aiohttp import web

from tracker import auth
from tracker.config import TrackerContext
from tracker.counters import COUNTERS
from tracker.db import queries
from tracker.db.engine import open_existing
from tracker.errors import BadRequest, Conflict, NotFound, Unauthorized
from tracker.routes.activity import note
from tracker.routes.swarm import end_sessions
from tracker.routes.web import CONTEXT, admin, json_body
from tracker.sessions import disabled_error

USER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
MIN_PASSWORD = 8


def ensure_admin(ctx: TrackerContext) -> str | None:
    """Create the `admin` account on first start; return its password if we generated it."""
    if ctx.db.call(queries.count_users):
        return None
    password = ctx.settings.admin_password or secrets.token_urlsafe(12)
    hashed = ctx.passwords.hash(password)
    ctx.db.call(lambda s: queries.add_user(s, "admin", hashed, True))
    return None if ctx.settings.admin_password else password


def reset_password(
    data: Path, name: str, password: str, now: float, database_url: str = "", passwords: auth.Passwords | None = None
) -> None:
    """`mist-admin reset-password`: set a password on the database directly (the tracker may be stopped, or may
    be running: it sees the account's new generation within seconds, so the old sessions end)."""
    hashed = (passwords or auth.Passwords()).hash(password)
    db = open_existing(data, database_url)
    try:
        db.call(lambda s: queries.change_password(s, name, hashed, now))
    except NotFound:
        names = ", ".join(str(u["name"]) for u in db.call(queries.list_users))
        raise NotFound(f"there is no account {name!r} in {data}; the accounts are: {names}") from None
    finally:
        db.engine.dispose()


def _expiry(ctx: TrackerContext, seconds: int) -> datetime:
    return datetime.fromtimestamp(ctx.now + seconds, timezone.utc).replace(tzinfo=None)


async def _issue(ctx: TrackerContext, user: queries.UserRow) -> web.Response:
    scope = "admin" if user.is_admin else "user"
    token, token_hash = auth.new_refresh_token()
    expires = _expiry(ctx, auth.REFRESH_LIFETIME)
    await ctx.db.run(lambda s: queries.store_refresh_token(s, user.name, token_hash, expires))
    return web.json_response(
        {
            "user": user.name,
            "scope": scope,
            "access_token": auth.issue_access_token(ctx.jwt_secret, user.name, scope, ctx.now, user.generation),
            "expires_in": auth.ACCESS_LIFETIME,
            "refresh_token": token,
            "public_key": ctx.signer.public_key,
        }
    )


async def login(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    body = await json_body(request, {"user": str, "password": str})
    address = request.remote or "unknown"
    attempt = ctx.throttle.begin(body["user"], address, ctx.now)  # counted now: concurrent guesses all count
    if attempt.delay:
        await asyncio.sleep(attempt.delay)  # answer a guesser slowly; the throttle decided how slowly
    user = await ctx.db.run(lambda s: queries.get_user(s, body["user"]))
    # argon2 takes ~50 ms of CPU, so it runs off the event loop. Verify against a dummy hash for unknown users so timing does not reveal which names exist.
    stored = user.password_hash if user else ctx.passwords.dummy_hash
    ok = await asyncio.to_thread(ctx.passwords.check, stored, body["password"])
    if user is None or not ok:
        request.app[COUNTERS].logins_failed.inc()
        await note(ctx, "login_failed", body["user"], summary=f"refused from {address}")
        raise Unauthorized("wrong user name or password")
    ctx.throttle.succeeded(attempt)
    if user.disabled:  # said only to someone who knows the password: a guesser learns nothing from it
        await note(ctx, "login_failed", user.name, summary=f"the account is disabled; from {address}")
        raise disabled_error(user.name)
    await note(ctx, "login", user.name, summary=f"signed in from {address}")
    await upgrade_hash(ctx, user.name, user.password_hash, body["password"])
    return await _issue(ctx, user)


async def upgrade_hash(ctx: TrackerContext, name: str, stored: str, password: str) -> None:
    """After a right password: hash it again when the stored hash was made at another cost than this tracker's
    (both sign-in doors, the API and the admin site, call it)."""
    if ctx.passwords.needs_rehash(stored):
        rehashed = await asyncio.to_thread(ctx.passwords.hash, password)
        await ctx.db.run(lambda s: queries.set_password_hash(s, name, rehashed))


async def refresh(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    body = await json_body(request, {"refresh_token": str})
    token_hash = auth.hash_refresh_token(body["refresh_token"])
    now = _expiry(ctx, 0)
    redeemed = await ctx.db.run(lambda s: queries.use_refresh_token(s, token_hash, now))
    if redeemed.user is not None and redeemed.user.disabled:
        raise disabled_error(redeemed.user.name)
    if redeemed.user is None or not redeemed.consumed:
        raise Unauthorized("your session has expired or was ended; log in again")
    return await _issue(ctx, redeemed.user)


async def add_user(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    admin(request)
    body = await json_body(request, {"name": str, "password": str}, {"admin": bool})
    name = body["name"]
    if not USER_RE.match(name):
        raise BadRequest(f"user name must be letters, digits, '_', '.' or '-', up to 64 (got {name!r})")
    if len(body["password"]) < MIN_PASSWORD:
        raise BadRequest(f"password must have at least {MIN_PASSWORD} characters")
    hashed = await asyncio.to_thread(ctx.passwords.hash, body["password"])
    await ctx.db.run(lambda s: queries.add_user(s, name, hashed, body.get("admin", False)))
    return web.json_response({"name": name, "admin": body.get("admin", False)}, status=201)


async def list_users(request: web.Request) -> web.Response:
    admin(request)
    return web.json_response({"users": await request.app[CONTEXT].db.run(queries.list_users)})


async def change_password(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    admin(request)
    name = request.match_info["name"]
    body = await json_body(request, {"password": str})
    if len(body["password"]) < MIN_PASSWORD:
        raise BadRequest(f"password must have at least {MIN_PASSWORD} characters")
    hashed = await asyncio.to_thread(ctx.passwords.hash, body["password"])
    await ctx.db.run(lambda s: queries.change_password(s, name, hashed, ctx.now))
    await sessions_ended(request, name)
    return web.json_response({"name": name, "sessions_revoked": True})


async def sessions_ended(request: web.Request, name: str) -> None:
    """After an account's generation moved on: forget its cached state, and close its swarm connections
    (telling the other members which ticket sessions ended, so they stop serving them)."""
    ctx = request.app[CONTEXT]
    ctx.sessions.changed(name)
    await end_sessions(request.app, name, await ctx.sessions.revoked())


async def disable_user(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    who = admin(request)
    name = request.match_info["name"]
    if name == who.user:
        raise Conflict("you cannot disable your own account; ask another admin")
    await ctx.db.run(lambda s: queries.disable_user(s, name, ctx.now))
    await sessions_ended(request, name)
    return web.json_response({"name": name, "disabled": True, "sessions_revoked": True})


async def enable_user(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    admin(request)
    name = request.match_info["name"]
    was_disabled = await ctx.db.run(lambda s: queries.enable_user(s, name))
    ctx.sessions.changed(name)
    return web.json_response({"name": name, "disabled": False, "was_disabled": was_disabled})


def routes() -> list[web.RouteDef]:
    return [
        web.post("/api/login", login),
        web.post("/api/refresh", refresh),
        web.get("/api/users", list_users),
        web.post("/api/users", add_user),
        web.post("/api/users/{name}/password", change_password),
        web.post("/api/users/{name}/disable", disable_user),
        web.post("/api/users/{name}/enable", enable_user),
    ]
