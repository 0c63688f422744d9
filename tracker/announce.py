"""Announcing a published build: news kept for every friend who may read it until their daemon heard it, told
on the swarm socket to those online, and the Discord post.

A commit hands the new build here; one task the application owns announces
builds one at a time, so a commit answers without waiting for anyone. The
news is first written down for every account that may read the build
(tracker/db/releases.py: one row per friend and game, the newest build), so a
friend offline now, or a tracker restarted meanwhile, loses nothing. Then the
announcer waits (a minute at most) for the build's patch job, so the size
each friend hears is what the planner will send them, patches included; then
it tells every online reader, and each daemon that connects later hears what
it has not acknowledged (`heard`) as soon as it says what it holds. The
Discord post is a worker job: it waits on a third party and may retry for a
minute. What each friend is told is sized for the builds that friend holds
(tracker/notify.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from shared.manifest import Manifest
from tracker import notify
from tracker.config import TrackerContext
from tracker.db import patches as patch_queries, releases
from tracker.db.patches import StoredManifest
from tracker.db.queries import Viewer
from tracker.errors import QueueUnavailable
from tracker.planner import PatchOption
from tracker.routes import updates
from tracker.routes.swarm import Member, Swarm
from tracker.routes.updates import parsed_manifest
from tracker.stored_sizes import StoredSizes, total

log = logging.getLogger("mist.announce")
SEND_TIMEOUT = 5.0  # a friend whose socket takes longer misses this telling; the news stays for the next connection
PATCH_POLL = 0.5
STORED_KEPT = 8  # builds whose stored chunk sizes are kept for sizing news (and the next commit): 56 MB at 100 GB


@dataclass(frozen=True)
class Published:
    """A build just committed, with what its commit already knew: its manifest, every chunk's stored size, and
    the job making its patches ("" when none was queued)."""

    game: str
    version: str
    digest: str
    target: Manifest
    stored: Mapping[str, int]
    patch_job: str = ""


def news_message(release: notify.Release, news: notify.News, news_id: int) -> dict[str, Any]:
    """The swarm socket's `news` message (no `id`: it answers no request; `news_id` is what `heard` acknowledges)."""
    return {
        "op": "news",
        "kind": "build",
        "game": release.game,
        "title": release.title,
        "version": release.version,
        "news_id": news_id,
        **news.to_json(),
        **({"notes": notify.notes_excerpt(release.notes)} if release.notes else {}),
    }


class Announcer:
    """Builds waiting to be announced, the loop that announces them one at a time, and telling a daemon its news."""

    def __init__(self, ctx: TrackerContext, swarm: Swarm) -> None:
        self.ctx, self.swarm = ctx, swarm
        self.queue: asyncio.Queue[Published] = asyncio.Queue()
        self.announced = 0
        self.wait = ctx.settings.patch_wait
        self._stored: OrderedDict[str, Mapping[str, int]] = OrderedDict()
        swarm.on_announce = self.deliver

    def __repr__(self) -> str:
        return f"Announcer(waiting={self.queue.qsize()}, announced={self.announced})"

    def published(self, build: Published) -> None:
        self._remember(build.digest, build.stored)
        self.queue.put_nowait(build)

    async def drained(self) -> None:
        """Until every build published so far is announced (tests, and a tidy shutdown)."""
        await self.queue.join()

    async def run(self) -> None:
        # News written down before a restart waited for patches that are made by now, or never will be.
        await self.ctx.db.run(lambda s: releases.mark_ready(s))
        while True:
            build = await self.queue.get()
            try:
                await self.announce(build)
                self.announced += 1
            except Exception:  # one build's failure must not silence every later one
                log.exception("could not announce %s %s", build.game, build.version)
            finally:
                self.queue.task_done()

    async def announce(self, build: Published) -> None:
        ctx = self.ctx
        # Kept compactly from now on: the commit's dict of a 100 GB build's sizes is ~250 MB (tracker/stored_sizes.py).
        stored = await asyncio.to_thread(StoredSizes.of, build.stored)
        self._remember(build.digest, stored)
        now = ctx.now
        kept = await ctx.db.run(lambda s: releases.queue_news(s, build.game, build.version, now))
        facts = await ctx.db.run(lambda s: releases.release_facts(s, build.game, build.version))
        await self._index_ahead(build, facts.previous)
        await self._patches_made(build)
        await ctx.db.run(lambda s: releases.mark_ready(s, build.game, build.version))
        release = notify.Release(build.game, facts.title, build.version, facts.private, stored.total, facts.notes)
        previous = (
            await asyncio.to_thread(parsed_manifest, facts.previous.digest, facts.previous.data) if facts.previous else None
        )
        settings = ctx.settings
        public = settings.public_url if settings.public_url_configured else ""  # a worked-out LAN address is no use there
        patches = await self._patches(build.target)
        text = await asyncio.to_thread(notify.discord_text, release, build.target, previous, build.stored, public, patches)
        if text is not None:
            job = await asyncio.to_thread(ctx.jobs.enqueue_news, text, game=build.game, version=build.version)
            log.info("queued the Discord post for %s %s (job %s)", build.game, build.version, job)
        members = [m for m in self.swarm.members.values() if not m.socket.closed and m.announced]
        told = sum(await asyncio.gather(*(self.deliver(m, build.game) for m in members)))
        log.info("kept news of %s %s for %d friend(s); told %d online", build.game, build.version, kept, told)

    async def _index_ahead(self, build: Published, previous: StoredManifest | None) -> None:
        """Make the new build's index before friends ask for plans (and, in `mist-server`, the seeder checks
        their tickets): from the previous build's, when the servers keep it, it is about a second at 100 GB
        (BuildIndex.following) where the first plan would otherwise scan the manifest (11-18 CPU s)."""
        indexes = updates.INDEXES
        held = indexes.peek(previous.digest) if previous is not None else None
        if previous is None or held is None:  # not in use here lately: the first plan makes it, as for any build
            return

        async def manifest() -> bytes:
            return await self.ctx.db.run(lambda s: patch_queries.manifest_data(s, build.digest))

        try:
            await indexes.index(build.digest, manifest, (held, previous.data))
        except Exception:  # only a head start: the first plan makes it (and says what is wrong) if this cannot
            log.exception("could not index %s %s ahead of the first plan", build.game, build.version)

    async def _patches_made(self, build: Published) -> None:
        """Until the build's patch job is done, or `wait` seconds passed (the news is then sized without them)."""
        if not build.patch_job:
            return
        deadline = time.monotonic() + self.wait
        while time.monotonic() < deadline:
            try:
                done, _ = await asyncio.to_thread(self.ctx.jobs.result, build.patch_job)
            except QueueUnavailable:
                return
            if done:
                return
            await asyncio.sleep(PATCH_POLL)

    async def _patches(self, target: Manifest) -> list[PatchOption]:
        contents = {f.sha256 for f in target.files}
        return list(await self.ctx.db.run(lambda s: patch_queries.options_for(s, contents)))

    def _remember(self, digest: str, stored: Mapping[str, int]) -> None:
        self._stored[digest] = stored
        self._stored.move_to_end(digest)
        while len(self._stored) > STORED_KEPT:
            self._stored.popitem(last=False)

    def stored_of(self, digest: str) -> Mapping[str, int] | None:
        """Every chunk's stored size of a build committed or announced lately, if this process still has them."""
        return self._stored.get(digest)

    async def _stored_sizes(self, digest: str, target: Manifest) -> Mapping[str, int]:
        known = self._stored.get(digest)
        if known is None:
            sizes = target.chunk_sizes()
            found = await asyncio.to_thread(self.ctx.store.sizes, sizes)
            known = await asyncio.to_thread(lambda: StoredSizes({h: found.get(h, size) for h, size in sizes.items()}))
            self._remember(digest, known)
        return known

    async def deliver(self, member: Member, game: str | None = None) -> int:
        """Tell one online daemon the news it has not acknowledged (of `game`, or all), each sized for the builds
        it holds; news of a build it already holds is acknowledged for it. The number of messages sent."""
        user = member.viewer.user
        items = await self.ctx.db.run(lambda s: releases.unheard(s, user, game))
        held_already = [i.id for i in items if i.digest in member.builds]
        if held_already:
            await self.ctx.db.run(lambda s: releases.heard(s, user, held_already))
        sent = 0
        for item in items:
            if item.digest in member.builds:
                continue
            target = await asyncio.to_thread(parsed_manifest, item.digest, item.manifest)
            stored = await self._stored_sizes(item.digest, target)
            held = sorted(d for d, g in member.builds.items() if g == item.game)
            rows = await self.ctx.db.run(lambda s: patch_queries.manifests_by_digest(s, held, Viewer("", True)))
            known = [await asyncio.to_thread(parsed_manifest, r.digest, r.data) for r in rows]
            release = notify.Release(item.game, item.title, item.version, item.private, total(stored), item.notes)
            patches = await self._patches(target)
            news = await asyncio.to_thread(notify.news_for, release, target, known, stored, patches)
            if await self._send(member, news_message(release, news, item.id)):
                sent += 1
        return sent

    @staticmethod
    async def _send(member: Member, message: dict[str, Any]) -> bool:
        try:
            async with asyncio.timeout(SEND_TIMEOUT):
                await member.socket.send_str(json.dumps(message))
            return True
        except (ConnectionError, TimeoutError) as exc:
            log.info("could not tell %s the news (%s)", member.viewer.user, exc.__class__.__name__)
            return False


ANNOUNCER = web.AppKey("announcer", Announcer)


async def announcing(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the announcer's loop runs while the application does, and is cancelled with it."""
    task = asyncio.create_task(app[ANNOUNCER].run(), name="announcer")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.wait([task])  # its end, without swallowing a cancellation of our own
