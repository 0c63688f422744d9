"""`/get`: how a friend gets Mist onto their computer, for the platform their browser runs on.

The page names the one command (or download) for that platform with this
tracker's public address and key fingerprint filled in, then the login that
pins that key. The client's wheel is served here too (tracker/client_wheel.py),
so pipx or uv install it straight from the tracker. Standalone bundles made by
scripts/build-bundle are offered when the admin puts them in DATA/get/ (named
mist-<os>-<arch>.zip or .tar.gz). Server-rendered, no script: the platform
comes from the request's headers, and plain links show the others.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path

import jinja2
from aiohttp import web

from shared.signing import fingerprint
from tracker import client_wheel
from tracker.admin.address import public_url
from tracker.errors import NotFound
from tracker.routes.web import CONTEXT

HERE = Path(__file__).parent
PLATFORMS = {"windows": "Windows", "macos": "macOS", "linux": "Linux"}
DOWNLOADS = "get"  # folder in the data directory for standalone bundles
_BUNDLE = re.compile(r"^mist-(windows|macos|linux)-[a-z0-9_]+\.(zip|tar\.gz)$")
_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, undefined=jinja2.StrictUndefined)
WHEEL = web.AppKey("client_wheel", dict)


@dataclass(frozen=True)
class Bundle:
    platform: str
    name: str
    size: int


def detect(user_agent: str, client_hint: str = "") -> str | None:
    """The visitor's platform from Sec-CH-UA-Platform (Chromium sends it) or the User-Agent; None if neither says."""
    hint = client_hint.strip('" ').lower()
    if hint in ("windows", "macos", "linux"):
        return hint
    agent = user_agent.lower()
    if "windows" in agent:
        return "windows"
    if "macintosh" in agent or "mac os x" in agent:
        return "macos"
    if "linux" in agent or "x11" in agent:
        return None if "android" in agent else "linux"
    return None


def bundles(folder: Path) -> list[Bundle]:
    """The standalone bundles the admin put in DATA/get/."""
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.iterdir()):
        match = _BUNDLE.match(path.name)
        if match and path.is_file():
            found.append(Bundle(match.group(1), path.name, path.stat().st_size))
    return found


async def _wheel(app: web.Application) -> client_wheel.Wheel:
    """Made once, on first ask (about a tenth of a second), then kept."""
    held = app[WHEEL]
    if "wheel" not in held:
        held["wheel"] = await asyncio.to_thread(client_wheel.from_this_install)
    wheel: client_wheel.Wheel = held["wheel"]
    return wheel


async def page(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    chosen = request.query.get("os", "")
    if chosen and chosen not in PLATFORMS:
        chosen = ""
    platform = chosen or detect(request.headers.get("User-Agent", ""), request.headers.get("Sec-CH-UA-Platform", ""))
    wheel = await _wheel(request.app)
    origin = public_url(request)
    offered = [b for b in await asyncio.to_thread(bundles, ctx.settings.data / DOWNLOADS) if b.platform == platform]
    html = _ENV.get_template("get.html").render(
        url=origin,
        wheel_url=f"{origin}/get/{wheel.filename}",
        fingerprint=fingerprint(ctx.signer.public_key),
        platform=platform,
        platforms=PLATFORMS,
        bundles=offered,
        detected=not chosen,
    )
    return web.Response(text=html, content_type="text/html", headers=_PAGE_HEADERS)


_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


async def latest_wheel(request: web.Request) -> web.Response:
    """pip needs a wheel's real file name (name-version-tags.whl) in the URL; this stable address leads there."""
    wheel = await _wheel(request.app)
    raise web.HTTPFound(f"/get/{wheel.filename}")


async def stylesheet(_request: web.Request) -> web.FileResponse:
    return web.FileResponse(HERE / "static" / "get.css", headers={"Cache-Control": "max-age=3600"})


async def download(request: web.Request) -> web.StreamResponse:
    name = request.match_info["file"]
    wheel = await _wheel(request.app)
    if name == wheel.filename:
        etag = f'"{wheel.sha256}"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(
            body=wheel.data,
            content_type="application/zip",
            headers={"ETag": etag, "Content-Disposition": f'attachment; filename="{name}"'},
        )
    if _BUNDLE.match(name):
        path = request.app[CONTEXT].settings.data / DOWNLOADS / name
        if path.is_file():
            return web.FileResponse(path, headers={"Content-Disposition": f'attachment; filename="{name}"'})
    raise NotFound(f"no download called {name!r} here; the page at /get lists what there is")


def setup(app: web.Application) -> None:
    app[WHEEL] = {}
    app.add_routes(
        [
            web.get("/get", page),
            web.get("/get/mist.whl", latest_wheel),
            web.get("/get/style.css", stylesheet),
            web.get("/get/{file}", download),
        ]
    )
