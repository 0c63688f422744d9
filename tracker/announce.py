"""Announcing a published build: news on the swarm socket to each online friend who may read it, and the Discord post.

The tracker process tells online friends itself, because it holds their
sockets (the worker is another process and would need a way in). It does so
from one task the application owns, a build at a time, so a commit answers
without waiting for anyone's socket. The Discord post is a worker job: it
waits on a third party and may retry for a minute. What each friend is told
is sized for the builds that friend holds (tracker/notify.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from shared.manifest import Manifest
from tracker import notify
from tracker.config import TrackerContext
from tracker.db import patches as patch_queries, releases
from tracker.db.queries import Viewer
from tracker.swarm import SWARM, Member, Swarm
from tracker.updates import parsed_manifest

log = logging.getLogger("mist.announce")
SEND_TIMEOUT = 5.0  # a friend whose socket takes longer misses this news; the others do not wait for it


@dataclass(frozen=True)
class Published:
    """A build just committed, with what its commit already knew: its manifest and every chunk's stored size."""

    game: str
    version: str
    digest: str
    target: Manifest
    stored: Mapping[str, int]


def news_message(release: notify.Release, news: notify.News) -> dict[str, Any]:
    """The swarm socket's `news` message (no `id`: it answers no request, and clients that do not know it skip it)."""
    return {"op": "news", "kind": "build", "game": release.game, "title": release.title, "version": release.version,
            **news.to_json()}


class Announcer:
    """Builds waiting to be announced, and the loop that announces them one at a time."""

    def __init__(self, ctx: TrackerContext, swarm: Swarm) -> None:
        self.ctx, self.swarm = ctx, swarm
        self.queue: asyncio.Queue[Published] = asyncio.Queue()
        self.announced = 0

    def __repr__(self) -> str:
        return f"Announcer(waiting={self.queue.qsize()}, announced={self.announced})"

    def published(self, build: Published) -> None:
        self.queue.put_nowait(build)

    async def drained(self) -> None:
        """Until every build published so far is announced (tests, and a tidy shutdown)."""
        await self.queue.join()

    async def run(self) -> None:
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
        facts = await ctx.db.run(lambda s: releases.release_facts(s, build.game, build.version))
        release = notify.Release(build.game, facts.title, build.version, facts.private, sum(build.stored.values()))
        previous = (await asyncio.to_thread(parsed_manifest, facts.previous.digest, facts.previous.data)
                    if facts.previous else None)
        settings = ctx.settings
        public = settings.public_url if settings.public_url_configured else ""  # a worked-out LAN address is no use there
        text = await asyncio.to_thread(notify.discord_text, release, build.target, previous, build.stored, public)
        if text is not None:
            job = await asyncio.to_thread(ctx.jobs.enqueue_news, text, game=build.game, version=build.version)
            log.info("queued the Discord post for %s %s (job %s)", build.game, build.version, job)
        told = await self.tell_online(release, build)
        log.info("told %d online friend(s) that %s %s is out", told, build.game, build.version)

    async def tell_online(self, release: notify.Release, build: Published) -> int:
        """Send each online member who may read the build its own line; the number told."""
        members = [m for m in self.swarm.members.values() if not m.socket.closed]
        if not members:
            return 0
        allowed = await self.ctx.db.run(lambda s: releases.readers(s, build.digest, [m.viewer for m in members]))
        readers = [m for m in members if m.viewer in allowed]
        holding = {m.id: tuple(sorted(d for d, g in m.builds.items() if g == build.game and d != build.digest))
                   for m in readers}
        wanted = sorted({d for held in holding.values() for d in held})
        rows = await self.ctx.db.run(lambda s: patch_queries.manifests_by_digest(s, wanted, Viewer("", True)))
        manifests = {r.digest: await asyncio.to_thread(parsed_manifest, r.digest, r.data) for r in rows}
        lines: dict[tuple[str, ...], notify.News] = {}
        for held in set(holding.values()):  # friends holding the same builds share one computation
            known = [manifests[d] for d in held if d in manifests]  # a build removed meanwhile counts as none
            lines[held] = await asyncio.to_thread(notify.news_for, release, build.target, known, build.stored)
        async with asyncio.TaskGroup() as group:
            for m in readers:
                group.create_task(self._send(m, news_message(release, lines[holding[m.id]])))
        return len(readers)

    @staticmethod
    async def _send(member: Member, message: dict[str, Any]) -> None:
        try:
            async with asyncio.timeout(SEND_TIMEOUT):
                await member.socket.send_str(json.dumps(message))
        except (ConnectionError, TimeoutError) as exc:
            log.info("could not tell %s the news (%s)", member.viewer.user, exc.__class__.__name__)


ANNOUNCER = web.AppKey("announcer", Announcer)


async def announcing(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the announcer's loop runs while the application does, and is cancelled with it."""
    task = asyncio.create_task(app[ANNOUNCER].run(), name="announcer")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.wait([task])  # its end, without swallowing a cancellation of our own
