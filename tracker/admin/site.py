"""The admin site as an aiohttp sub-application mounted at /admin, with its templates and static files.

Its middleware is the site's one gate: every page but those marked public needs an admin's session, every
POST its CSRF token and an origin of this site; every answer gets the security headers; a domain error
becomes an HTML page that says what to do (the API's middleware would answer JSON).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from shared.errors import MistError
from shared.service.errors import status_for
from tracker.admin import formatting, notices, security, session
from tracker.config import TrackerContext
from tracker.routes.web import CONTEXT, Handler

log = logging.getLogger("mist.admin")
HERE = Path(__file__).parent
STATIC = HERE / "static"
HTMX = "htmx-2.0.11.min.js"
HTMX_SSE = "htmx-ext-sse-2.2.4.min.js"
MAX_FORM = 64 * 1024  # the site's forms are a few fields: a body larger than this is refused unread
NAV = (
    ("/admin/", "Dashboard"),
    ("/admin/games", "Games"),
    ("/admin/users", "Users"),
    ("/admin/invitations", "Invitations"),
    ("/admin/activity", "Activity"),
    ("/admin/jobs", "Jobs"),
    ("/admin/storage", "Storage"),
    ("/admin/keys", "Keys"),
)


def _is_public(handler: Handler) -> bool:
    return bool(getattr(handler, "admin_public", False))


@web.middleware
async def gate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Body limits, sessions, CSRF and origin checks, security headers and HTML errors for every page of the site."""
    if request.method == "POST":  # before any check reads the form: the public sign-in and join pages too
        request = request.clone(client_max_size=MAX_FORM)  # a body without a declared length is counted as read
    request[aiohttp_jinja2.REQUEST_CONTEXT_KEY] = _globals(request)
    try:
        if request.content_length is not None and request.content_length > MAX_FORM:
            raise web.HTTPRequestEntityTooLarge(
                max_size=MAX_FORM,
                actual_size=request.content_length,
                reason=f"this form is larger than {MAX_FORM // 1024} KiB; the site's forms are a few fields, send less",
            )
        response = await _checked(request, handler)
    except web.HTTPException as exc:
        if exc.status >= 400:
            response = _error_page(request, exc.status, exc.reason)
        else:
            exc.headers.update(security.HEADERS)
            raise
    except MistError as exc:
        response = _error_page(request, status_for(exc), str(exc))
    if request.path.startswith("/admin/static/"):
        response.headers.update(security.STATIC_HEADERS)
    else:
        response.headers.update(security.HEADERS)
    return response


async def _checked(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path == "/admin":  # the address as people type it
        raise web.HTTPPermanentRedirect("/admin/")
    if _is_public(handler):
        return await handler(request)
    try:
        who = await session.current(request)
    except session.NotSignedIn:
        raise session.login_redirect(request) from None
    except session.NotAnAdmin as exc:
        response = aiohttp_jinja2.render_template("refused.html", request, {"user": exc.user, "why": str(exc)}, status=403)
        response.del_cookie(session.COOKIE, path="/admin")
        return response
    if request.method == "POST":
        security.check_origin(request)
        sent = request.headers.get("X-CSRF-Token") or str((await request.post()).get("csrf", ""))
        security.check_csrf(who.csrf, sent)
    request[session.REQUEST_KEY] = who
    request[aiohttp_jinja2.REQUEST_CONTEXT_KEY].update(admin=who, csrf=who.csrf)
    return await handler(request)


def _error_page(request: web.Request, status: int, message: str) -> web.Response:
    return aiohttp_jinja2.render_template("error.html", request, {"status": status, "message": message}, status=status)


def _globals(request: web.Request) -> dict[str, object]:
    """What every template may use: the admin looking and their CSRF token (once the session is checked),
    the menu, the clock, the notice to show."""
    return {
        "admin": None,
        "csrf": "",
        "nav": NAV,
        "path": request.path,
        "now": request.app[CONTEXT].now,
        "htmx": HTMX,
        "htmx_sse": HTMX_SSE,
        "query": request.query,
        "notice": notices.notice(request.query),
    }


def _environment(app: web.Application) -> None:
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("tracker.admin", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(bytes=formatting.human_bytes, when=formatting.when, when_dt=formatting.when_dt, percent=formatting.percent)
    env.globals["ago"] = formatting.ago


def make_admin_app(ctx: TrackerContext) -> web.Application:
    """The site, to mount with `app.add_subapp("/admin", ...)`."""
    from tracker.admin import activity_page, dashboard, games, invitations, jobs_page, keys_page, live, storage, users

    app = web.Application(middlewares=[gate])
    app[CONTEXT] = ctx
    app[live.STOPPING] = asyncio.Event()
    _environment(app)
    app.add_routes(
        session.routes()
        + dashboard.routes()
        + games.routes()
        + users.routes()
        + invitations.routes()
        + activity_page.routes()
        + jobs_page.routes()
        + storage.routes()
        + keys_page.routes()
        + live.routes()
    )
    app.router.add_get("/static/{name}", _static)
    app.cleanup_ctx.append(activity_page.pruning)
    app.on_shutdown.append(live.stop_streams)
    return app


@session.public
async def _static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    path = STATIC / name
    if "/" in name or name.startswith(".") or not path.is_file():
        raise web.HTTPNotFound(reason=f"no file {name!r} here")
    return web.FileResponse(path)


def api_routes() -> list[web.RouteDef]:
    """Routes of the JSON API that belong to the site's features (`mistpipe invite`)."""
    from tracker.admin import invitations

    return invitations.api_routes()
