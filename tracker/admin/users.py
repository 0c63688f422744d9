"""The users pages: the accounts, a new one, and per account a new password, disable or enable, admin
rights on or off, and the private games it may see."""

from __future__ import annotations

import asyncio

import aiohttp_jinja2
from aiohttp import web

from tracker.admin import notices
from tracker.admin.forms import Form
from tracker.admin.session import admin_user
from tracker.db import activity, admin_views, queries
from tracker.errors import Conflict
from tracker.routes.accounts import MIN_PASSWORD, USER_RE
from tracker.routes.activity import note
from tracker.routes.swarm import end_sessions
from tracker.routes.web import CONTEXT

NAME_HINT = "must be letters, digits, '_', '.' or '-', up to 64, like alice"


async def list_users(request: web.Request, form: Form | None = None, status: int = 200) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    users = await ctx.db.run(queries.list_users)
    return aiohttp_jinja2.render_template("users.html", request, {"users": users, "form": form or Form({})}, status=status)


async def create_user(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    form = await Form.read(request)
    name = form.text("name", "the user name", max_length=64, pattern=USER_RE, hint=NAME_HINT)
    password = form.password("password", MIN_PASSWORD)
    make_admin = form.flag("admin")
    if form.ok:
        hashed = await asyncio.to_thread(ctx.passwords.hash, password)
        try:
            await ctx.db.run(lambda s: queries.add_user(s, name, hashed, make_admin))
        except Conflict:
            form.error("name", f"there is an account {name} already; pick another name")
    if not form.ok:
        form.values.pop("password", None)
        return await list_users(request, form, 400)
    await note(ctx, "user", name, summary=f"account created by {admin_user(request).name}" + (" (admin)" if make_admin else ""))
    raise notices.see(f"/admin/users/{name}", "user-created", name)


async def _user_page(request: web.Request, name: str, form: Form | None = None, status: int = 200) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    users, grants, private, recent = await ctx.db.run(
        lambda s: (
            queries.list_users(s),
            admin_views.user_grants(s, name),
            admin_views.private_games(s),
            activity.recent(s, user=name, limit=20),
        )
    )
    found = next((u for u in users if u["name"] == name), None)
    if found is None:
        raise web.HTTPNotFound(reason=f"there is no account {name}; the users page lists them")
    return aiohttp_jinja2.render_template(
        "user.html",
        request,
        {
            "user": found,
            "grants": grants,
            "private": private,
            "recent": recent,
            "form": form or Form({}),
            "me": admin_user(request).name,
        },
        status=status,
    )


async def show_user(request: web.Request) -> web.StreamResponse:
    return await _user_page(request, request.match_info["name"])


async def set_password(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    name = request.match_info["name"]
    form = await Form.read(request)
    password = form.password("password", MIN_PASSWORD)
    if not form.ok:
        return await _user_page(request, name, form, 400)
    hashed = await asyncio.to_thread(ctx.passwords.hash, password)
    now = ctx.now
    await ctx.db.run(lambda s: queries.change_password(s, name, hashed, now))
    await sessions_ended(request, name)
    await note(ctx, "user", name, summary=f"password reset by {admin_user(request).name}")
    raise notices.see(f"/admin/users/{name}", "password-set", name)


async def _switch(request: web.Request, disabled: bool | None = None, is_admin: bool | None = None) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    name = request.match_info["name"]
    me = admin_user(request).name
    if name == me and (disabled or is_admin is False):
        raise Conflict("you cannot disable your own account or take your own admin rights; ask another admin")
    now = ctx.now
    if disabled:
        await ctx.db.run(lambda s: admin_views.disable_user(s, name, now))
        key = "disabled"
    elif disabled is not None:
        await ctx.db.run(lambda s: queries.enable_user(s, name))
        key = "enabled"
    else:
        assert is_admin is not None
        await ctx.db.run(lambda s: admin_views.set_admin(s, name, is_admin, now))
        key = "admin-on" if is_admin else "admin-off"
    await sessions_ended(request, name)
    await note(ctx, "user", name, summary=f"{key.replace('-', ' ')} by {me}")
    raise notices.see(f"/admin/users/{name}", key, name)


async def disable(request: web.Request) -> web.StreamResponse:
    return await _switch(request, disabled=True)


async def enable(request: web.Request) -> web.StreamResponse:
    return await _switch(request, disabled=False)


async def admin_rights(request: web.Request) -> web.StreamResponse:
    form = await Form.read(request)
    return await _switch(request, is_admin=form.raw("admin") == "on")


async def set_grants(request: web.Request) -> web.StreamResponse:
    """The private games this account may see: exactly those ticked."""
    ctx = request.app[CONTEXT]
    name = request.match_info["name"]
    posted = await request.post()
    wanted = {str(v) for v in posted.getall("game", [])}
    before, private = await ctx.db.run(lambda s: (admin_views.user_grants(s, name), admin_views.private_games(s)))
    me = admin_user(request).name
    for slug, _title in private:
        if (slug in wanted) != (slug in before):
            await ctx.db.run(lambda s, slug=slug: queries.set_grant(s, name, slug, slug in wanted))  # type: ignore[misc]  # slug bound per turn of the loop
            await note(ctx, "grant" if slug in wanted else "revoke", name, slug, summary=f"by {me}")
    raise notices.see(f"/admin/users/{name}", "grants-saved", name)


async def sessions_ended(request: web.Request, name: str) -> None:
    """As the API does after an account change: forget its cached state, close its swarm connections and tell
    friends' daemons which ticket sessions ended (tracker/sessions.py)."""
    ctx = request.app[CONTEXT]
    ctx.sessions.changed(name)
    await end_sessions(request.match_info.apps[0], name, await ctx.sessions.revoked())


def routes() -> list[web.RouteDef]:
    return [
        web.get("/users", list_users),
        web.post("/users", create_user),
        web.get("/users/{name}", show_user),
        web.post("/users/{name}/password", set_password),
        web.post("/users/{name}/disable", disable),
        web.post("/users/{name}/enable", enable),
        web.post("/users/{name}/admin", admin_rights),
        web.post("/users/{name}/grants", set_grants),
    ]
