"""Signing in to the admin site and out of it, and who is looking.

The same accounts, passwords and login throttle as `POST /api/login`. A session lives server-side
(tracker/db/admin_sessions.py) behind an HttpOnly, SameSite=Strict cookie; every request checks it
against the account, so disabling the account, taking its admin rights or setting a new password ends
it at the next click. A plain user who signs in is told plainly that the site is for admins.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from urllib.parse import quote

import aiohttp_jinja2
from aiohttp import web

from tracker.admin import security
from tracker.admin.forms import Form
from tracker.counters import COUNTERS
from tracker.db import admin_sessions, queries
from tracker.errors import Forbidden, Unauthorized
from tracker.routes.accounts import upgrade_hash
from tracker.routes.activity import note
from tracker.routes.web import CONTEXT, Handler
from tracker.throttle import LoginRefused

log = logging.getLogger("mist.admin")
COOKIE = "mist_admin"
LOGIN_COOKIE = "mist_admin_login"  # a sign-in form's CSRF token, before there is a session
LIFETIME = 12 * 3600
REQUEST_KEY = "mist.admin.user"


@dataclass(frozen=True)
class AdminUser:
    """The admin signed in on this request, with the CSRF token of their session."""

    name: str
    csrf: str


def public(handler: Handler) -> Handler:
    """Mark a page anyone may open (sign-in, an invitation, static files)."""
    setattr(handler, "admin_public", True)
    return handler


class NotSignedIn(Unauthorized):
    """No valid session: the browser is sent to the sign-in form."""

    def __init__(self) -> None:
        super().__init__("sign in to the admin site first")


class NotAnAdmin(Forbidden):
    """A session whose account may no longer use the site; the session has been ended."""

    def __init__(self, user: str, why: str) -> None:
        super().__init__(why)
        self.user = user


async def current(request: web.Request) -> AdminUser:
    """The admin behind this request's session cookie; NotSignedIn or NotAnAdmin otherwise."""
    token = request.cookies.get(COOKIE, "")
    if not token:
        raise NotSignedIn()
    ctx = request.app[CONTEXT]
    now = ctx.now
    found = await ctx.db.run(lambda s: admin_sessions.read(s, token, now))
    if found is None:
        raise NotSignedIn()
    account = await ctx.sessions.account(found.user)  # the API's check, from the same cache (tracker/sessions.py)
    why = (
        "the account no longer exists"
        if account is None
        else "the account is disabled"
        if account.disabled
        else "its session was ended (a new password, or its rights changed)"
        if account.generation != found.generation
        else "the account is not an admin"
        if not account.is_admin
        else ""
    )
    if why:
        await ctx.db.run(lambda s: admin_sessions.close(s, token))
        raise NotAnAdmin(found.user, why)
    return AdminUser(found.user, found.csrf)


def _next_page(raw: str) -> str:
    """Where to go after signing in: a page of this site, never another site."""
    if raw.startswith("/admin") and not raw.startswith("//") and "\\" not in raw and "\n" not in raw:
        return raw
    return "/admin/"


def login_redirect(request: web.Request) -> web.HTTPSeeOther:
    target = request.path_qs if request.method == "GET" else "/admin/"
    return web.HTTPSeeOther(f"/admin/login?next={quote(target)}")


def _login_page(request: web.Request, form: Form | None = None, status: int = 200, problem: str = "") -> web.Response:
    token = request.cookies.get(LOGIN_COOKIE) or security.new_token()
    response = aiohttp_jinja2.render_template(
        "login.html",
        request,
        {
            "form": form or Form({}),
            "login_csrf": token,
            "problem": problem,
            "next": _next_page(request.query.get("next", "") or (form.raw("next") if form else "")),
        },
        status=status,
    )
    security.set_cookie(response, request, LOGIN_COOKIE, token, "/admin/login", None)
    return response


@public
async def login_form(request: web.Request) -> web.StreamResponse:
    try:
        await current(request)
    except (NotSignedIn, NotAnAdmin):
        return _login_page(request)
    raise web.HTTPSeeOther(_next_page(request.query.get("next", "")))


@public
async def login(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    security.check_origin(request)
    form = await Form.read(request)
    security.check_csrf(request.cookies.get(LOGIN_COOKIE, ""), form.raw("csrf"))
    name = form.text("user", "your user name", max_length=64)
    password = form.raw("password")
    if not password:
        form.error("password", "the password is required")
    if not form.ok:
        return _login_page(request, form, 400)
    address = request.remote or "unknown"
    try:
        attempt = ctx.throttle.begin(name, address, ctx.now)  # counted now: concurrent guesses all count
    except LoginRefused as exc:
        return _login_page(request, form, 429, str(exc))
    if attempt.delay:
        await asyncio.sleep(attempt.delay)  # answer a guesser slowly, as the API does; the throttle decided how slowly
    user = await ctx.db.run(lambda s: queries.get_user(s, name))
    ok = await asyncio.to_thread(ctx.passwords.check, user.password_hash if user else ctx.passwords.dummy_hash, password)
    if user is None or not ok:
        request.config_dict[COUNTERS].logins_failed.inc()
        await note(ctx, "login_failed", name, summary=f"admin site sign-in refused from {address}")
        form.error("password", "wrong user name or password")
        return _login_page(request, form, 401)
    ctx.throttle.succeeded(attempt)
    if user.disabled:
        await note(ctx, "login_failed", name, summary="admin site: the account is disabled")
        return _login_page(request, form, 403, f"the account {name} is disabled; another admin can enable it")
    if not user.is_admin:
        await note(ctx, "login_failed", name, summary="admin site: not an admin account")
        return aiohttp_jinja2.render_template(
            "refused.html",
            request,
            {
                "user": name,
                "why": "the admin site is for admin accounts only",
            },
            status=403,
        )
    await upgrade_hash(ctx, name, user.password_hash, password)
    token, csrf = security.new_token(), security.new_token()
    now = ctx.now
    await ctx.db.run(lambda s: admin_sessions.open_session(s, name, token, csrf, now, now + LIFETIME))
    await note(ctx, "login", name, summary=f"signed in to the admin site from {address}")
    response = web.HTTPSeeOther(_next_page(form.raw("next")))
    security.set_cookie(response, request, COOKIE, token, "/admin", LIFETIME)
    response.del_cookie(LOGIN_COOKIE, path="/admin/login")
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    token = request.cookies.get(COOKIE, "")
    await ctx.db.run(lambda s: admin_sessions.close(s, token))
    response = web.HTTPSeeOther("/admin/login?done=signed-out")
    response.del_cookie(COOKIE, path="/admin")
    raise response


def admin_user(request: web.Request) -> AdminUser:
    """The admin the site's middleware let through."""
    who = request.get(REQUEST_KEY)
    assert isinstance(who, AdminUser), "a page of the admin site without its session check"
    return who


def routes() -> list[web.RouteDef]:
    return [
        web.get("/login", login_form),
        web.post("/login", login),
        web.post("/logout", logout),
    ]
