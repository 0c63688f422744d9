"""What the app can do: the one place the pages, the JSON API and the CLI's local calls all go through.

It joins what the tracker says (the catalog, who is online) with what this
machine knows (installs, the queue, games running, settings), and turns the
daemon's events into the live stream, in-app notices and desktop notifications.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from client.api import login as tracker_login
from client.app import desktop, settings_form
from client.app.catalog import Catalog, Listing, newest_build, updated_at
from client.app.downloads import DONE, FAILED, Downloads, Job, QueueError
from client.app.events import Hub
from client.app.friends import Friends, friend_rows
from client.app.play import Player, PlayError
from client.app.preferences import Preferences
from client.app.runner import Runner
from client.games_folder import folder_name, games_folder
from client.errors import ClientError, InstallError, NotLoggedIn, ServerRefused, TrackerUnavailable
from client.installer import Installer
from client.progress import Quiet, human
from client.swarm import SEEDER
from shared.errors import MistError
from shared.signing import fingerprint
from shared.wording import count

if TYPE_CHECKING:
    from client.daemon import Daemon

NOTICES_KEPT = 50
FRIENDS_SAVE_EVERY = 5.0
SORTS = ("recent", "title")


class SignInError(ClientError):
    """Signing in failed; `kind` picks the screen: unreachable, password, fingerprint or refused."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def state_of(game: dict[str, Any], installed: str | None, job: Job | None, broken: bool, playing: bool) -> str:
    """The one word the library shows for a game, in the order that matters most to the friend."""
    if playing:
        return "playing"
    if job is not None:
        return {"queued": "queued", "paused": "paused"}.get(job.state, "downloading")
    if installed is None:
        return "not installed"
    if broken:
        return "broken"
    if game.get("latest") and installed != game.get("latest"):
        return "update available"
    return "installed"


class Service:
    def __init__(self, daemon: "Daemon") -> None:
        self.daemon = daemon
        home = daemon.home
        self.home = home
        self.hub = Hub()
        self.notices: deque[dict[str, Any]] = deque(maxlen=NOTICES_KEPT)
        self.player = Player(home, self.tell)
        self.friends = Friends(home)
        self.catalog = Catalog(home, self._catalog_call)
        self.runner = Runner(self)
        self.downloads = Downloads(home, self.runner, self.tell, clean=self.runner.clean)
        self.broken: dict[str, list[str]] = {}  # game -> files a verify found bad and did not repair
        self.sizes: dict[tuple[str, str, str], int] = {}  # (game, installed digest, latest) -> update bytes for us
        self.group: asyncio.TaskGroup | None = None
        self._sizing: set[tuple[str, str, str]] = set()
        self.hub_listeners: list[Callable[[str, dict[str, Any]], None]] = []  # CLIs following their job
        self.changes = 0  # events told so far, but progress: what the library's rows depend on
        self._rows: tuple[object, list[dict[str, Any]]] = (None, [])
        daemon.listeners.append(self.tell)

    def __repr__(self) -> str:
        return f"Service({self.downloads!r}, {self.hub!r})"

    async def run(self, group: asyncio.TaskGroup) -> None:
        self.group = group
        group.create_task(self.downloads.run())
        while True:  # fold the upload counts into the per-friend totals now and then
            await asyncio.sleep(FRIENDS_SAVE_EVERY)
            if self.friends.given_now(self.daemon.uploads.given):
                await asyncio.to_thread(self.friends.save)

    def close(self) -> None:
        self.hub.close()
        self.friends.given_now(self.daemon.uploads.given)
        self.friends.save()

    # ---- events --------------------------------------------------------------------------------------

    def tell(self, kind: str, data: dict[str, Any]) -> None:
        if kind != "progress":
            self.changes += 1  # a state the library shows may have changed (progress is read from the job itself)
        self.hub.publish(kind, data)
        for listener in list(self.hub_listeners):
            listener(kind, data)
        if kind == "finished" and data["state"] in (DONE, FAILED):
            self._finished(data)
        elif kind == "news":
            self.catalog.forget()  # a new build: the library asks the tracker again
            installed = self.daemon.state.installed_versions()
            self.notice("news", data["text"], data.get("game", ""), desktop_too=data.get("game") in installed)
        elif kind == "account":
            self.catalog.forget()

    def _finished(self, job: dict[str, Any]) -> None:
        if job["op"] == "repair" and job["state"] == DONE and job["result"]:
            result = job["result"]
            if result.get("ok") or result.get("repaired"):
                self.broken.pop(job["game"], None)
            else:
                self.broken[job["game"]] = list(result.get("files_bad", []))
        verb = {"install": "installed", "update": "updated", "repair": "verified"}[job["op"]]
        if job["state"] == DONE:
            text = f"{job['title']} {(job['result'] or {}).get('version', '')} {verb}".replace("  ", " ")
            if job["op"] == "repair" and job["result"]:
                bad = job["result"].get("files_bad", [])
                text = (
                    f"{job['title']}: all files intact"
                    if not bad
                    else f"{job['title']}: {count(len(bad), 'damaged file')} found and repaired"
                )
        else:
            text = f"{job['title']}: the {job['op']} failed: {job['error']}"
        self.notice("download", text, job["game"], desktop_too=job["origin"] == "app")

    def notice(self, kind: str, text: str, game: str = "", desktop_too: bool = True) -> None:
        item = {"at": time.time(), "kind": kind, "text": text, "game": game}
        self.notices.appendleft(item)
        self.hub.publish("notice", item)
        prefs = self.preferences()
        if desktop_too and prefs.notifications and self.group is not None:
            self.group.create_task(desktop.notify("Mist", text))

    # ---- account -------------------------------------------------------------------------------------

    def account(self) -> dict[str, Any]:
        api = self.daemon.api
        creds = api.creds if api is not None else None
        return {
            "signed_in": self.daemon.signed_in,
            "why": self.daemon.signed_out_because,
            "notice": self.daemon.key_notice,
            "url": creds.url if creds else "",
            "user": creds.user if creds else "",
            "fingerprint": fingerprint(creds.public_key) if creds else "",
        }

    async def sign_in(self, url: str, user: str, password: str, expected: str = "") -> str:
        """Log in to the tracker and go online; the fingerprint of the key now trusted."""
        url = url.strip().rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise SignInError("unreachable", f"the server address must start with http:// or https:// (got {url!r})")
        if not user or not password:
            raise SignInError("password", "enter your user name and password")
        try:
            creds = await tracker_login(url, user.strip(), password)
        except TrackerUnavailable as exc:
            raise SignInError("unreachable", str(exc)) from exc
        except ServerRefused as exc:
            if exc.status in (401, 403):
                raise SignInError("password", f"wrong user name or password for {url} ({exc})") from exc
            raise SignInError("refused", f"the server refused the sign-in: {exc}") from exc
        served = fingerprint(creds.public_key)
        bare = "".join(c for c in expected.lower() if c.isalnum())
        if bare and bare != "".join(c for c in served.lower() if c.isalnum()):
            raise SignInError(
                "fingerprint",
                f"the server at {url} signs with key {served}, not {expected.strip()}; "
                "nothing was saved. Check the fingerprint with the admin",
            )
        await self.daemon.sign_in(creds)
        self.catalog.forget()
        return served

    async def sign_out(self) -> None:
        await self.daemon.sign_out()
        self.catalog.forget()

    async def _catalog_call(self) -> dict[str, Any]:
        if not self.daemon.signed_in:
            raise TrackerUnavailable("not signed in")
        return dict(await self.daemon.need_api().call("GET", "/api/games"))

    # ---- library and games ---------------------------------------------------------------------------

    def _row(self, game: dict[str, Any], installs: dict[str, tuple[str, Path]]) -> dict[str, Any]:
        slug = game["slug"]
        here = installs.get(slug)
        job = self.downloads.active_for(slug)
        broken = slug in self.broken or (here is not None and not here[1].is_dir())
        state = state_of(game, here[0] if here else None, job, broken, slug in self.player.running)
        latest = newest_build(game)
        size = None
        if state == "update available":
            size = self._update_size(slug)
        return {
            "slug": slug,
            "title": game["title"],
            "description": game.get("description", ""),
            "header_image": game.get("header_image", ""),
            "latest": game.get("latest"),
            "state": state,
            "installed": {"version": here[0], "dir": str(here[1])} if here else None,
            "update_bytes": size,
            "updated": updated_at(game),
            "install_bytes": latest.get("stored_size") if latest else None,
            "job": job.to_json() if job else None,
        }

    async def library(
        self, query: str = "", installed_only: bool = False, sort: str = "recent"
    ) -> tuple[list[dict[str, Any]], Listing]:
        listing = await self.catalog.listing()
        key = (id(listing), self.changes)
        if self._rows[0] != key:  # the rows of 500 games cost a few ms: made again only when something changed
            installs = await asyncio.to_thread(self.daemon.state.installed_versions)
            self._rows = (key, [self._row(g, installs) for g in listing.games])
        rows = [
            r if r["job"] is None else {**r, "job": _job_now(self.downloads.active_for(r["slug"]))} for r in self._rows[1]
        ]  # a job's progress moves without an event that remakes the rows
        words = query.lower().split()
        rows = [r for r in rows if all(w in r["title"].lower() or w in r["slug"] for w in words)]
        if installed_only:
            rows = [r for r in rows if r["installed"]]
        if sort == "title":
            rows.sort(key=lambda r: r["title"].lower())
        else:
            rows.sort(key=lambda r: (r["updated"], r["title"].lower()), reverse=True)
        self._size_updates(rows)
        return rows, listing

    async def game(self, slug: str) -> dict[str, Any]:
        game, listing = await self.catalog.game(slug)
        if game is None:
            raise InstallError(f"no game {slug!r} in the library; it may have been removed, or you may not see it")
        installs = await asyncio.to_thread(self.daemon.state.installed_versions)
        row = self._row(game, installs)
        install = await asyncio.to_thread(self.daemon.state.get, slug) if row["installed"] else None
        size = await asyncio.to_thread(lambda: install.build.total_size) if install else 0  # the index: off the loop
        builds = [dict(b) for b in reversed(game.get("builds", []))]
        row.update(
            builds=builds,
            offline=listing.error,
            launch=game.get("launch", ""),
            size_on_disk=size,
            playing=slug in self.player.running,
            played=self.player.seconds_played(slug),
            broken_files=self.broken.get(slug, []),
            default_dir=str(self.install_folder(slug)),
        )
        if install is not None:
            build = next((b for b in builds if b["version"] == install.version), None)
            row["launch"] = (build or {}).get("launch") or game.get("launch", "")
        self._size_updates([row])
        return row

    def install_folder(self, slug: str) -> Path:
        return games_folder(self.home) / folder_name(slug)

    def _update_size(self, slug: str) -> int | None:
        for (game, _, latest), size in self.sizes.items():
            if game == slug:
                return size
        for news in reversed(list(self.daemon.news)):
            if news.game == slug and news.update:
                return news.bytes
        return None

    def _size_updates(self, rows: list[dict[str, Any]]) -> None:
        """Size each available update for this machine, in the background, once per (install, latest build)."""
        if self.group is None or not self.daemon.signed_in:
            return
        for row in rows:
            if row["state"] != "update available":
                continue
            install = self.daemon.state.get(row["slug"])
            if install is None:
                continue
            key = (row["slug"], install.digest, str(row["latest"]))
            if key not in self.sizes and key not in self._sizing:
                self._sizing.add(key)
                self.group.create_task(self._size(key, install.dir))

    async def _size(self, key: tuple[str, str, str], root: Path) -> None:
        try:
            installer = Installer(self.daemon.need_api(), self.daemon.state, Quiet())
            _, routes = await installer.preview(key[0], root, key[2])
            self.sizes = {k: v for k, v in self.sizes.items() if k[0] != key[0]}
            self.sizes[key] = sum(routes.bytes_by_source().values())
            self.hub.publish("sized", {"game": key[0], "bytes": self.sizes[key]})
        except (MistError, OSError):
            pass  # shown without a size; the next listing tries again
        finally:
            self._sizing.discard(key)

    async def preview(self, slug: str, directory: Path, version: str | None) -> dict[str, Any]:
        """What an install or a version switch would cost, before it starts (as `mist install` says it)."""
        installer = Installer(self.daemon.need_api(), self.daemon.state, Quiet())
        plan, routes = await installer.preview(slug, directory, version)
        download = sum(routes.bytes_by_source().values())
        if not routes.by_path and plan.bytes_local == 0:
            game, _ = await self.catalog.game(slug)
            build = next((b for b in (game or {}).get("builds", []) if b["version"] == plan.target.version), None)
            download = int(build["stored_size"]) if build else plan.bytes_to_fetch
        elif not routes.by_path:
            download = plan.bytes_to_fetch
        free = await asyncio.to_thread(_free_space, directory)
        return {
            "game": slug,
            "version": plan.target.version,
            "dir": str(directory),
            "download": download,
            "write": plan.bytes_to_write,
            "free": free,
            "fits": plan.peak_extra_disk < free,
            "files": len(plan.write),
            "text": f"download about {human(download)}, write {human(plan.bytes_to_write)} ({human(free)} free)",
        }

    # ---- actions -------------------------------------------------------------------------------------

    async def install(self, slug: str, directory: str = "", version: str | None = None) -> Job:
        game, _ = await self.catalog.game(slug)
        if game is None:
            raise InstallError(f"no game {slug!r} in the library")
        folder = Path(directory).expanduser() if directory.strip() else self.install_folder(slug)
        if not folder.is_absolute():
            raise InstallError(f"choose a full folder path, like {self.install_folder(slug)} (got {directory!r})")
        installed = await asyncio.to_thread(self.daemon.state.get, slug)
        if installed is not None:
            raise InstallError(f"{game['title']} is already installed in {installed.dir}; update or switch version instead")
        return self.downloads.add("install", slug, game["title"], str(folder.resolve()), version or None)

    async def update(self, slug: str, version: str | None = None, yes: bool = False) -> Job:
        installed = await asyncio.to_thread(self.daemon.state.get, slug)
        if installed is None:
            raise InstallError(f"{slug} is not installed here; install it first")
        game, _ = await self.catalog.game(slug)
        title = game["title"] if game else slug
        return self.downloads.add("update", slug, title, str(installed.dir), version or None, yes=yes)

    async def repair(self, slug: str) -> Job:
        installed = await asyncio.to_thread(self.daemon.state.get, slug)
        if installed is None:
            raise InstallError(f"{slug} is not installed here; nothing to verify")
        game, _ = await self.catalog.game(slug)
        return self.downloads.add("repair", slug, game["title"] if game else slug, str(installed.dir))

    async def uninstall(self, slug: str) -> str:
        if slug in self.player.running:
            raise InstallError(f"{slug} is running; close the game first")
        if self.downloads.active_for(slug) is not None:
            raise QueueError(f"{slug} is in the download queue; cancel it there first")
        installer = Installer(self.daemon.need_api(), self.daemon.state, Quiet())
        removed, kept = await installer.uninstall(slug)
        self.broken.pop(slug, None)
        await self.daemon.refresh()
        return str(removed.dir) + (f" (kept {count(len(kept), 'game file')} you changed)" if kept else "")

    async def play(self, slug: str) -> None:
        if self.group is None:
            raise PlayError("the app is still starting; try again in a moment")
        detail = await self.game(slug)
        if not detail["installed"]:
            raise PlayError(f"{detail['title']} is not installed here; install it first")
        if detail["job"] is not None and detail["job"]["state"] in ("downloading", "waiting"):
            raise PlayError(f"{detail['title']} is being changed right now; play once its download is done")
        await self.player.play(slug, detail["launch"] or "", Path(detail["installed"]["dir"]), self.group)

    async def open_folder(self, slug: str) -> str:
        installed = await asyncio.to_thread(self.daemon.state.get, slug)
        if installed is None:
            raise InstallError(f"{slug} is not installed here")
        if not await desktop.open_folder(installed.dir):
            raise InstallError(f"could not open a file manager here; the folder is {installed.dir}")
        return str(installed.dir)

    # ---- friends and settings ------------------------------------------------------------------------

    async def friends_page(self) -> dict[str, Any]:
        online: list[dict[str, Any]] = []
        error = ""
        try:
            online = list((await self.daemon.need_api().call("GET", "/api/friends"))["friends"])
        except (TrackerUnavailable, ServerRefused, NotLoggedIn) as exc:
            error = str(exc)
        self.friends.given_now(self.daemon.uploads.given)
        now_from = {u: n for u, n in (self.runner.live or {}).items() if u != SEEDER}
        status = self.daemon.status()
        me = self.daemon.api.creds.user if self.daemon.api else ""
        return {
            "friends": friend_rows(online, me, self.friends.totals, status["peers"], now_from),
            "error": error,
            "sharing": status["sharing"],
            "uploaded": status["bytes_uploaded"],
        }

    def preferences(self) -> Preferences:
        return settings_form.preferences_of(self.home)

    def settings(self) -> dict[str, Any]:
        return settings_form.current(self.home, self.daemon.settings)

    async def change_settings(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply a settings form or JSON body; every field is checked before anything is saved."""
        fresh = await settings_form.apply(self.home, self.daemon.settings, changes)
        if fresh is not None:
            await self.daemon.apply_settings(fresh)
        return self.settings()


def _job_now(job: Job | None) -> dict[str, Any] | None:
    return job.to_json() if job is not None else None


def _free_space(folder: Path) -> int:
    probe = folder
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    return shutil.disk_usage(probe).free
