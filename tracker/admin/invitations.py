"""Invitations: the admin makes a one-time, expiring link for a new account; the friend opens it, picks a
password, and lands on a page that says how to get the app and sign in (address and key filled in).

Only a hash of each link's secret is stored, so a link is shown once, when it is made. `mistpipe invite`
makes one through `POST /api/invitations`.
"""

from __future__ import annotations

import asyncio

import aiohttp_jinja2
from aiohttp import web

from shared.signing import fingerprint
from shared.wording import count
from tracker.admin import notices, security
from tracker.admin.address import public_url
from tracker.admin.forms import Form
from tracker.admin.session import admin_user, public
from tracker.db import invitations
from tracker.errors import BadRequest, Conflict
from tracker.routes.accounts import MIN_PASSWORD, USER_RE
from tracker.routes.activity import note
from tracker.routes.web import CONTEXT, admin, json_body

DEFAULT_DAYS = 7
MAX_DAYS = 30
JOIN_COOKIE = "mist_admin_join"  # the password form's CSRF token (the friend has no session)


async def _make(request: web.Request, name: str, days: int, by: str) -> tuple[str, invitations.InvitationRow]:
    ctx = request.app[CONTEXT]
    token = security.new_token()
    now = ctx.now
    row = await ctx.db.run(lambda s: invitations.create(s, name, token, by, now, now + days * 86400))
    await note(ctx, "invitation", name, summary=f"invited by {by}, the link works for {count(days, 'day')}")
    return f"{public_url(request)}/admin/join/{token}", row


async def page(request: web.Request, form: Form | None = None, status: int = 200, link: str = "") -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    rows = await ctx.db.run(invitations.listing)
    return aiohttp_jinja2.render_template(
        "invitations.html",
        request,
        {
            "invitations": rows,
            "form": form or Form({"days": str(DEFAULT_DAYS)}),
            "link": link,
            "max_days": MAX_DAYS,
        },
        status=status,
    )


async def create(request: web.Request) -> web.StreamResponse:
    form = await Form.read(request)
    name = form.text(
        "name",
        "the new account's name",
        max_length=64,
        pattern=USER_RE,
        hint="must be letters, digits, '_', '.' or '-', up to 64, like alice",
    )
    days = form.number("days", "the days the link works", 1, MAX_DAYS, required=True)
    if form.ok and days is not None:
        try:
            link, _row = await _make(request, name, days, admin_user(request).name)
        except Conflict as exc:
            form.error("name", str(exc))
        else:
            return await page(request, Form({"days": str(DEFAULT_DAYS)}), 200, link)
    return await page(request, form, 400)


async def withdraw(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    raw = request.match_info["id"]
    if not raw.isdigit():
        raise web.HTTPNotFound(reason="no such invitation")
    now = ctx.now
    await ctx.db.run(lambda s: invitations.withdraw(s, int(raw), now))
    raise notices.see("/admin/invitations", "withdrawn", f"#{raw}")


def _join_page(request: web.Request, row: invitations.InvitationRow, form: Form | None = None, status: int = 200) -> web.Response:
    token = request.cookies.get(JOIN_COOKIE) or security.new_token()
    response = aiohttp_jinja2.render_template(
        "join.html",
        request,
        {
            "invitation": row,
            "form": form or Form({}),
            "join_csrf": token,
            "min_password": MIN_PASSWORD,
        },
        status=status,
    )
    security.set_cookie(response, request, JOIN_COOKIE, token, "/admin/join", None)
    return response


@public
async def join_form(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    token, now = request.match_info["token"], ctx.now
    row = await ctx.db.run(lambda s: invitations.find(s, token, now))
    return _join_page(request, row)


@public
async def join(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    security.check_origin(request)
    form = await Form.read(request)
    security.check_csrf(request.cookies.get(JOIN_COOKIE, ""), form.raw("csrf"))
    token, now = request.match_info["token"], ctx.now
    row = await ctx.db.run(lambda s: invitations.find(s, token, now))
    password = form.password("password", MIN_PASSWORD)
    if form.ok and form.raw("repeat") != password:
        form.error("repeat", "the two passwords differ; type the same one twice")
    if not form.ok:
        form.values.pop("password", None)
        form.values.pop("repeat", None)
        return _join_page(request, row, form, 400)
    hashed = await asyncio.to_thread(ctx.passwords.hash, password)
    name = await ctx.db.run(lambda s: invitations.accept(s, token, hashed, ctx.now))
    await note(ctx, "invitation", name, summary="accepted the invitation and chose a password")
    response = aiohttp_jinja2.render_template(
        "welcome.html",
        request,
        {
            "name": name,
            "url": public_url(request),
            "fingerprint": fingerprint(ctx.signer.public_key),
        },
    )
    response.del_cookie(JOIN_COOKIE, path="/admin/join")
    return response


async def api_invite(request: web.Request) -> web.Response:
    """POST /api/invitations {name, days?}: a one-time link for a new account, for `mistpipe invite`."""
    who = admin(request)
    body = await json_body(request, {"name": str}, {"days": int})
    name, days = body["name"], body.get("days", DEFAULT_DAYS)
    if not USER_RE.match(name):
        raise BadRequest(f"user name must be letters, digits, '_', '.' or '-', up to 64 (got {name!r})")
    if not 1 <= days <= MAX_DAYS:
        raise BadRequest(f"days must be from 1 to {MAX_DAYS} (got {days})")
    link, row = await _make(request, name, days, who.user)
    return web.json_response({"name": name, "url": link, "expires_at": row.expires_at, "days": days}, status=201)


def routes() -> list[web.RouteDef]:
    return [
        web.get("/invitations", page),
        web.post("/invitations", create),
        web.post("/invitations/{id}/withdraw", withdraw),
        web.get("/join/{token}", join_form),
        web.post("/join/{token}", join),
    ]


def api_routes() -> list[web.RouteDef]:
    return [web.post("/api/invitations", api_invite)]
