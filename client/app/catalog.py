"""The tracker's catalog as the app shows it: fetched when it is older than a few seconds, kept on disk so the
library shows offline too, with each game's header image cached beside it.

Images are fetched by the daemon (the pages load only from the daemon's own
origin, so the content policy stays strict), once per address, and kept in
MIST_HOME/art/ named by the SHA-256 of their address.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from client.api import fetch_image
from client.errors import ServerRefused, TrackerUnavailable
from shared.durable import write_atomic

CATALOG_FILE = "catalog.json"
ART_DIR = "art"
FRESH_FOR = 5.0  # seconds a fetched catalog is shown before a page's look asks the tracker again (in the background)
MAX_IMAGE = 4 * 1024 * 1024
IMAGE_TYPES = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/gif": "gif"}


@dataclass(frozen=True)
class Listing:
    """The games, and whether they are this moment's (error empty) or the last ones seen (offline)."""

    games: list[dict[str, Any]]
    fetched: float  # unix time
    error: str = ""  # why the tracker was not asked or did not answer; empty: fresh


class Catalog:
    def __init__(
        self, home: Path, call: Callable[[], Awaitable[dict[str, Any]]] | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = home / CATALOG_FILE
        self.art = home / ART_DIR
        self.call = call  # GET /api/games on the tracker, or None while signed out
        self.clock = clock
        self._listing: Listing | None = None
        self._fetching: asyncio.Task[Listing] | None = None
        self._images: dict[str, asyncio.Task[Path | None]] = {}

    def __repr__(self) -> str:
        return f"Catalog(games={len(self._listing.games) if self._listing else None})"

    def forget(self) -> None:
        """Signed out: the next listing asks again (another account may see other games)."""
        self._listing = None

    async def listing(self, fresh: bool = False) -> Listing:
        """The catalog: the one held, asking the tracker again in the background once it is older than FRESH_FOR
        seconds, so no page waits on the tracker; only the first look (or `fresh`, or after `forget`) waits."""
        held = self._listing
        if held is not None and not held.error and not fresh:
            if self.clock() - held.fetched >= FRESH_FOR and (self._fetching is None or self._fetching.done()):
                self._fetching = asyncio.create_task(self._fetch())
            return held
        if self._fetching is None or self._fetching.done():
            self._fetching = asyncio.create_task(self._fetch())
        return await asyncio.shield(self._fetching)

    async def _fetch(self) -> Listing:
        if self.call is None:
            return await asyncio.to_thread(self._saved, "not signed in")
        try:
            body = await self.call()
            games = body["games"]
        except (TrackerUnavailable, ServerRefused) as exc:
            return await asyncio.to_thread(self._saved, str(exc))
        listing = Listing(games, self.clock())
        self._listing = listing
        await asyncio.to_thread(write_atomic, self.path, json.dumps({"fetched": listing.fetched, "games": games}).encode())
        return listing

    def _saved(self, why: str) -> Listing:
        try:
            body = json.loads(self.path.read_text(encoding="utf-8"))
            return Listing(list(body["games"]), float(body["fetched"]), why)
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return Listing([], 0.0, why)

    async def game(self, slug: str) -> tuple[dict[str, Any] | None, Listing]:
        listing = await self.listing()
        return next((g for g in listing.games if g["slug"] == slug), None), listing

    # ---- header images -------------------------------------------------------------------------------

    def image_file(self, url: str) -> Path | None:
        """The cached image of `url`, if it was fetched before."""
        name = hashlib.sha256(url.encode()).hexdigest()[:32]
        found = [p for p in (self.art / f"{name}.{ext}" for ext in IMAGE_TYPES.values()) if p.exists()]
        return found[0] if found else None

    async def image(self, url: str) -> Path | None:
        """The image of `url` on disk, fetched once if it is not yet (None: no image to be had now)."""
        if not url.startswith(("https://", "http://")):
            return None
        cached = await asyncio.to_thread(self.image_file, url)
        if cached is not None:
            return cached
        task = self._images.get(url)
        if task is None or (task.done() and task.result() is None):
            task = self._images[url] = asyncio.create_task(self._download(url))
        return await asyncio.shield(task)

    async def _download(self, url: str) -> Path | None:
        name = hashlib.sha256(url.encode()).hexdigest()[:32]
        fetched = await fetch_image(url, MAX_IMAGE)
        if fetched is None or fetched[0] not in IMAGE_TYPES:
            return None
        kind, data = fetched
        self.art.mkdir(exist_ok=True)
        path = self.art / f"{name}.{IMAGE_TYPES[kind]}"
        await asyncio.to_thread(write_atomic, path, data)
        return path


def newest_build(game: dict[str, Any]) -> dict[str, Any] | None:
    return next((b for b in game.get("builds", []) if b["version"] == game.get("latest")), None)


def updated_at(game: dict[str, Any]) -> str:
    """When the game last got a build (ISO time, sorts as text); "" for none."""
    return max((str(b.get("created_at", "")) for b in game.get("builds", [])), default="")
