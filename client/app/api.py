"""The JSON API under /api/: what the pages' script, the `mist` command and scripts call.

`GET /api/games` answers the library with each game's state (the contract
scripts rely on). The CLI's calls (`/api/status`, `/api/refresh`, `/api/run`)
are here too: `mist install` and `mist update` become jobs in the same queue
the app shows, and stream their progress back as JSON lines.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from aiohttp import web

from client.app import server
from client.app.downloads import CANCELLED, DONE, PAUSED, Job
from client.app.service import Service
from client.errors import ServerRefused
from client.progress import Bar
from shared.errors import MistError
from shared.wording import count


def _service(request: web.Request) -> Service:
    return request.app[server.SERVICE]


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except (ValueError, RecursionError):  # nested too deep to read is bad input too, not a 500
        raise MistError("the request body must be a JSON object") from None
    if not isinstance(body, dict):
        raise MistError("the request body must be a JSON object")
    return body


def _text(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise MistError(f"{name} must be text")
    return value


# ---- the CLI's calls ---------------------------------------------------------------------------------


async def status(request: web.Request) -> web.Response:
    service = _service(request)
    return web.json_response(
        {
            **service.daemon.status(),
            "downloads": [j.to_json() for j in service.downloads.jobs],
            "app_pages": len(service.hub.subscribers),
        }
    )  # pages of the app open now, live


async def refresh(request: web.Request) -> web.Response:
    daemon = _service(request).daemon
    await daemon.refresh()
    return web.json_response({"builds_shared": daemon.library.held_builds()})


async def run(request: web.Request) -> web.StreamResponse:
    """`mist install` / `mist update` through the daemon: a job in the queue, its progress as JSON lines."""
    service = _service(request)
    body = await _body(request)
    op, game = body.get("op"), body.get("game")
    if op not in ("install", "update") or not isinstance(game, str):
        raise MistError(f"unknown op {op!r}; the CLI sends install or update")
    service.daemon.need_api()
    known, _ = await service.catalog.game(game)
    title = known["title"] if known else game
    if op == "install":
        installed = service.daemon.state.get(game)
        directory = str(body.get("dir") or "")
        if installed is not None and Path(directory) != installed.dir:
            raise MistError(f"{game} is already installed in {installed.dir}; `mist update {game}` updates it there")
        job = service.downloads.add(
            "install", game, title, directory, body.get("version"), bool(body.get("overwrite")), "cli", bool(body.get("yes"))
        )
    else:
        installed = service.daemon.state.get(game)
        if installed is None:
            raise MistError(f"{game} is not installed here; `mist install {game} --dir FOLDER` installs it")
        job = service.downloads.add(
            "update", game, title, str(installed.dir), body.get("to"), bool(body.get("overwrite")), "cli", bool(body.get("yes"))
        )
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await response.prepare(request)
    stream = StreamProgress()
    sender = asyncio.create_task(stream.pump(response))
    try:
        await _follow(service, job, stream)
    finally:
        stream.put(None)
        await sender
    return response


async def _follow(service: Any, job: Job, stream: "StreamProgress") -> None:
    """Pass the job's progress to the CLI until it ends, is paused or cancelled in the app."""
    ended = service.downloads.ended.get(job.id)
    running = service.downloads.running
    if running is not None and running[0] is job:
        running[2].attach(stream)
    else:
        stream.say(
            f"queued: {count(len(service.downloads.jobs) - 1, 'download')} before it; the app's Downloads page shows the queue"
            if job.state != "downloading"
            else ""
        )
    attached = running is not None and running[0] is job

    def watch(kind: str, data: dict[str, Any]) -> None:
        nonlocal attached
        if data.get("id") != job.id:
            return
        current = service.downloads.running
        if not attached and current is not None and current[0] is job:
            current[2].attach(stream)
            attached = True
        if kind == "job" and data["state"] == PAUSED:
            stream.put({"error": "paused in the Mist app; resume it there, or run the same command again"})
            stream.put(None)

    service.hub_listeners.append(watch)
    try:
        if ended is not None:
            await ended.wait()
    finally:
        service.hub_listeners.remove(watch)
    if job.state == DONE and job.result is not None:
        stream.put({"result": job.result})
    elif job.state == CANCELLED:
        stream.put({"error": "cancelled in the Mist app"})
    elif job.confirm:
        stream.put({"error": job.error, "confirm": job.confirm})  # the CLI may ask its person, and send "yes"
    elif job.error:
        stream.put({"error": job.error})


class StreamProgress:
    """Progress for a CLI on the other end of the local API: bars and messages as JSON lines."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._bars = 0
        self._closed = False

    def put(self, item: dict[str, Any] | None) -> None:
        if not self._closed:
            self._queue.put_nowait(item)
        if item is None:
            self._closed = True

    def bar(self, description: str, total: int) -> Bar:
        self._bars += 1
        self.put({"bar": self._bars, "description": description, "total": total})
        return _StreamBar(self, self._bars)

    def say(self, message: str) -> None:
        if message:
            self.put({"say": message})

    def __enter__(self) -> "StreamProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    async def pump(self, response: web.StreamResponse) -> None:
        """Write what was put, a batch per wake-up, until None (the end)."""
        done = False
        while not done:
            batch = [await self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            if None in batch:
                done, batch = True, batch[: batch.index(None)]
            try:
                await response.write(b"".join(json.dumps(i).encode() + b"\n" for i in batch))
            except ConnectionError:
                pass  # the CLI went away; the work goes on and is recorded


class _StreamBar:
    def __init__(self, progress: StreamProgress, number: int) -> None:
        self._progress, self._number = progress, number

    def advance(self, amount: int) -> None:
        self._progress.put({"advance": self._number, "bytes": amount})


# ---- the app's API -----------------------------------------------------------------------------------


async def games(request: web.Request) -> web.Response:
    q = request.query
    rows, listing = await _service(request).library(
        q.get("q", ""), q.get("installed") in ("1", "true", "on"), q.get("sort", "recent")
    )
    return web.json_response({"games": rows, "fetched": listing.fetched, "offline": listing.error})


async def game(request: web.Request) -> web.Response:
    return web.json_response(await _service(request).game(request.match_info["slug"]))


async def preview(request: web.Request) -> web.Response:
    service = _service(request)
    slug = request.match_info["slug"]
    body = await _body(request)
    installed = service.daemon.state.get(slug)
    folder = installed.dir if installed else Path(_text(body, "dir") or service.install_folder(slug)).expanduser()
    return web.json_response(await service.preview(slug, folder, _text(body, "version")))


async def action(request: web.Request) -> web.Response:
    service = _service(request)
    slug, verb = request.match_info["slug"], request.match_info["action"]
    body = await _body(request)
    if verb == "install":
        job = await service.install(slug, _text(body, "dir") or "", _text(body, "version"))
        return web.json_response(job.to_json(), status=202)
    if verb == "update":
        job = await service.update(slug, _text(body, "version"), body.get("yes") is True)
        return web.json_response(job.to_json(), status=202)
    if verb == "repair":
        return web.json_response((await service.repair(slug)).to_json(), status=202)
    if verb == "uninstall":
        return web.json_response({"game": slug, "uninstalled_from": await service.uninstall(slug)})
    if verb == "play":
        await service.play(slug)
        return web.json_response({"game": slug, "playing": True})
    if verb == "open-folder":
        return web.json_response({"game": slug, "opened": await service.open_folder(slug)})
    raise web.HTTPNotFound()


async def downloads(request: web.Request) -> web.Response:
    return web.json_response(_service(request).downloads.to_json())


async def download_action(request: web.Request) -> web.Response:
    queue = _service(request).downloads
    job_id, verb = request.match_info["id"], request.match_info["action"]
    do = {"pause": queue.pause, "resume": queue.resume, "cancel": queue.cancel, "top": queue.top}.get(verb)
    if do is None:
        raise web.HTTPNotFound()
    return web.json_response(do(job_id).to_json())


async def friends(request: web.Request) -> web.Response:
    return web.json_response(await _service(request).friends_page())


async def settings(request: web.Request) -> web.Response:
    service = _service(request)
    if request.method == "GET":
        return web.json_response(service.settings())
    return web.json_response(await service.change_settings(await _body(request)))


async def account(request: web.Request) -> web.Response:
    return web.json_response(_service(request).account())


async def sign_in(request: web.Request) -> web.Response:
    body = await _body(request)
    served = await _service(request).sign_in(
        str(body.get("url", "")), str(body.get("user", "")), str(body.get("password", "")), str(body.get("fingerprint", ""))
    )
    return web.json_response({"signed_in": True, "fingerprint": served})


async def sign_out(request: web.Request) -> web.Response:
    await _service(request).sign_out()
    return web.json_response({"signed_in": False})


async def notices(request: web.Request) -> web.Response:
    service = _service(request)
    return web.json_response({"notices": list(service.notices), "news": service.daemon.news.to_json()})


async def events(request: web.Request) -> web.StreamResponse:
    return await _service(request).hub.stream(request)


async def open_address(request: web.Request) -> web.Response:
    """A one-time address that opens a signed-in browser session (`mist app`); only with the daemon's token."""
    if request.get("via") != "token":
        raise ServerRefused(403, "only the mist command (with the token in daemon.json) may ask for an app address")
    code = request.app[server.SESSIONS].new_code()
    port = request.app[server.PORT][0]
    return web.json_response({"url": f"http://127.0.0.1:{port}/open?code={code}"})


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/status", status),
        web.post("/api/refresh", refresh),
        web.post("/api/run", run),
        web.get("/api/games", games),
        web.get("/api/games/{slug}", game),
        web.post("/api/games/{slug}/preview", preview),
        web.post("/api/games/{slug}/{action}", action),
        web.get("/api/downloads", downloads),
        web.post("/api/downloads/{id}/{action}", download_action),
        web.get("/api/friends", friends),
        web.get("/api/settings", settings),
        web.put("/api/settings", settings),
        web.get("/api/account", account),
        web.post("/api/account/sign-in", sign_in),
        web.post("/api/account/sign-out", sign_out),
        web.get("/api/notices", notices),
        web.get("/api/events", events),
        web.post("/api/app/open-address", open_address),
    ]
