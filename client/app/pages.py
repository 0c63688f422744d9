"""The app's pages, rendered on the daemon (Jinja2, autoescaped), with plain links and forms.

Every page works without script: a form posts, the daemon acts and answers
with a redirect back (a message for the next page is kept in the browser
session). The one script (static/app.js) only adds what cannot be HTML: live
progress, the speed chart and notices from the event stream. Jinja2 is
imported here and nowhere else.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from client.app import guard, server, service as service_mod
from client.app.play import human_duration
from client.progress import human
from shared.errors import MistError
from shared.wording import count

ENV = web.AppKey("jinja", jinja2.Environment)
REFRESH_HEADER = "X-Mist-Refresh"  # sent by app.js when it fetches the page it shows to swap its main part
FLASH = web.AppKey("flash", dict)


def setup(app: web.Application) -> None:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("client.app", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
    )
    env.filters["bytes"] = lambda n: "-" if n is None else human(n)
    env.filters["rate"] = lambda n: f"{human(n or 0)}/s"
    env.filters["duration"] = human_duration
    env.filters["eta"] = _eta
    env.filters["ago"] = _ago
    env.filters["day"] = lambda iso: str(iso)[:10]
    env.filters["chart"] = chart_points
    env.filters["count"] = count  # {{ n | count("file") }}: "1 file", "2 files"
    app[ENV] = env
    app[FLASH] = {}


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    return (
        f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        if seconds >= 3600
        else f"{seconds // 60}:{seconds % 60:02d}"
    )


def _ago(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(at))


def chart_points(speeds: list[float], width: int = 300, height: int = 60) -> str:
    """An SVG polyline's points for the speed history (newest at the right), scaled to its own peak."""
    if not speeds:
        return f"0,{height} {width},{height}"
    peak = max(max(speeds), 1.0)
    step = width / max(len(speeds) - 1, 1)
    return " ".join(f"{i * step:.1f},{height - s / peak * (height - 2):.1f}" for i, s in enumerate(speeds))


def _service(request: web.Request) -> Any:
    return request.app[server.SERVICE]


def _session(request: web.Request) -> str:
    return request.cookies.get(guard.COOKIE, "") or "token"


def flash(request: web.Request, message: str, kind: str = "ok") -> None:
    request.app[FLASH][_session(request)] = (kind, message)


async def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    service = _service(request)
    # A page's live refresh (app.js) keeps the message already shown; it must not take one meant for the page
    # being navigated to (a refresh of the sign-in page racing the redirect after signing in took "Signed in").
    refresh = request.headers.get(REFRESH_HEADER) == "1"
    kind_message = None if refresh else request.app[FLASH].pop(_session(request), None)
    account = service.account()
    page = (
        request.app[ENV]
        .get_template(template)
        .render(
            account=account,
            flash=kind_message,
            path=request.path,
            queued=len(service.downloads.jobs),
            notices=len(service.notices),
            **context,
        )
    )
    return web.Response(text=page, content_type="text/html", status=status)


def not_opened(request: web.Request) -> web.Response:
    """A browser without the app's session: say how to open it (nothing else is shown)."""
    page = request.app[ENV].get_template("not_opened.html").render()
    response = web.Response(text=page, content_type="text/html", status=401)
    response.headers.update(guard.SECURITY_HEADERS)
    return response


async def error_page(request: web.Request, message: str, status: int) -> web.Response:
    if request.method == "POST" and status < 500:
        flash(request, message, "error")  # a form's mistake: back to the page it came from, saying what to fix
        raise web.HTTPSeeOther(_back(request))
    return await render(request, "error.html", status=status, message=message)


def _back(request: web.Request) -> str:
    referer = request.headers.get("Referer", "")
    marker = f"//{request.host}"
    if marker in referer:
        return referer.split(marker, 1)[1] or "/"
    return "/"


def _signed_in(request: web.Request) -> None:
    if not _service(request).daemon.signed_in:
        raise web.HTTPSeeOther("/signin")


# ---- pages ---------------------------------------------------------------------------------------------


async def library(request: web.Request) -> web.Response:
    _signed_in(request)
    q = request.query
    query, installed, sort = q.get("q", ""), q.get("installed") == "on", q.get("sort", "recent")
    rows, listing = await _service(request).library(query, installed, sort)
    return await render(request, "library.html", games=rows, listing=listing, query=query, installed=installed, sort=sort)


async def game(request: web.Request) -> web.Response:
    _signed_in(request)
    detail = await _service(request).game(request.match_info["slug"])
    return await render(request, "game.html", game=detail)


async def confirm(request: web.Request) -> web.Response:
    """Before an install or a version switch: what it will download and write, and the free space."""
    _signed_in(request)
    service = _service(request)
    slug = request.match_info["slug"]
    detail = await service.game(slug)
    version = request.query.get("version") or None
    if detail["installed"]:
        folder = Path(detail["installed"]["dir"])
    else:
        folder = Path(request.query.get("dir") or detail["default_dir"]).expanduser()
        if not folder.is_absolute():
            raise MistError(f"choose a full folder path, like {detail['default_dir']}")
    estimate = await service.preview(slug, folder, version)
    return await render(request, "confirm.html", game=detail, estimate=estimate)


async def uninstall_confirm(request: web.Request) -> web.Response:
    _signed_in(request)
    return await render(request, "uninstall.html", game=await _service(request).game(request.match_info["slug"]))


async def downloads(request: web.Request) -> web.Response:
    queue = _service(request).downloads
    return await render(
        request, "downloads.html", active=[j.to_json() for j in queue.jobs], finished=[j.to_json() for j in queue.finished]
    )


async def friends(request: web.Request) -> web.Response:
    _signed_in(request)
    return await render(request, "friends.html", page=await _service(request).friends_page())


async def settings(request: web.Request) -> web.Response:
    return await render(request, "settings.html", settings=_service(request).settings())


async def notices(request: web.Request) -> web.Response:
    service = _service(request)
    return await render(request, "notices.html", items=list(service.notices), news=list(reversed(service.daemon.news.to_json())))


async def signin(request: web.Request) -> web.Response:
    return await render(request, "signin.html", error=None)


async def open_code(request: web.Request) -> web.StreamResponse:
    """The one-time address: a fresh session cookie, then the library."""
    session = request.app[server.SESSIONS].redeem(request.query.get("code", ""))
    if session is None:
        response = not_opened(request)
        return response
    response = web.HTTPSeeOther("/")
    response.headers["Set-Cookie"] = guard.cookie_header(session)
    raise response


# ---- forms ---------------------------------------------------------------------------------------------


async def game_form(request: web.Request) -> web.Response:
    service = _service(request)
    slug, verb = request.match_info["slug"], request.match_info["action"]
    form = await request.post()
    version = str(form.get("version") or "") or None
    if verb == "install":
        job = await service.install(slug, str(form.get("dir") or ""), version)
        flash(request, f"{job.title} is in the download queue.")
    elif verb == "update":
        job = await service.update(slug, version, form.get("yes") == "yes")
        flash(request, f"{job.title}: {'switching to ' + version if version else 'updating'}; see Downloads.")
    elif verb == "repair":
        job = await service.repair(slug)
        flash(request, f"{job.title}: verifying every file; damaged ones will be repaired.")
    elif verb == "uninstall":
        if form.get("confirm") != "yes":
            raise MistError("tick the box to confirm the uninstall")
        where = await service.uninstall(slug)
        flash(request, f"Uninstalled from {where}; your own files there were left alone.")
    elif verb == "play":
        await service.play(slug)
        flash(request, "Started. Have fun!")
    elif verb == "open-folder":
        flash(request, f"Opened {await service.open_folder(slug)}.")
    else:
        raise web.HTTPNotFound()
    raise web.HTTPSeeOther(f"/games/{slug}")


async def download_form(request: web.Request) -> web.Response:
    queue = _service(request).downloads
    job_id, verb = request.match_info["id"], request.match_info["action"]
    do = {"pause": queue.pause, "resume": queue.resume, "cancel": queue.cancel, "top": queue.top}.get(verb)
    if do is None:
        raise web.HTTPNotFound()
    do(job_id)
    raise web.HTTPSeeOther("/downloads")


async def settings_form(request: web.Request) -> web.Response:
    form = await request.post()
    changes: dict[str, Any] = {
        name: str(form.get(name, "")) for name in ("upload_cap", "download_cap", "max_peers", "schedule", "default_dir")
    }
    for name in ("enabled", "notifications", "autostart"):
        changes[name] = form.get(name) == "on"
    await _service(request).change_settings(changes)
    flash(request, "Settings saved.")
    raise web.HTTPSeeOther("/settings")


async def signin_form(request: web.Request) -> web.Response:
    form = await request.post()
    service = _service(request)
    try:
        served = await service.sign_in(
            str(form.get("url", "")), str(form.get("user", "")), str(form.get("password", "")), str(form.get("fingerprint", ""))
        )
    except service_mod.SignInError as exc:
        return await render(
            request,
            "signin.html",
            status=400,
            error={"kind": exc.kind, "message": str(exc)},
            url=str(form.get("url", "")),
            user=str(form.get("user", "")),
        )
    flash(request, f"Signed in. The server's key is {served}.")
    raise web.HTTPSeeOther("/")


async def signout_form(request: web.Request) -> web.Response:
    await _service(request).sign_out()
    raise web.HTTPSeeOther("/signin")


async def art(request: web.Request) -> web.StreamResponse:
    service = _service(request)
    found, _ = await service.catalog.game(request.match_info["slug"])
    path = await service.catalog.image(found.get("header_image", "")) if found else None
    if path is None:
        return web.FileResponse(server.static_folder() / "placeholder.svg", headers={"Cache-Control": "max-age=60"})
    return web.FileResponse(path, headers={"Cache-Control": "max-age=3600"})


def routes() -> list[web.RouteDef]:
    return [
        web.get("/", library),
        web.get("/games/{slug}", game),
        web.get("/games/{slug}/confirm", confirm),
        web.get("/games/{slug}/uninstall", uninstall_confirm),
        web.post("/games/{slug}/{action}", game_form),
        web.get("/downloads", downloads),
        web.post("/downloads/{id}/{action}", download_form),
        web.get("/friends", friends),
        web.get("/settings", settings),
        web.post("/settings", settings_form),
        web.get("/notices", notices),
        web.get("/signin", signin),
        web.post("/signin", signin_form),
        web.post("/signout", signout_form),
        web.get("/open", open_code),
        web.get("/art/{slug}", art),
    ]
