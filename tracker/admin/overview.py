"""Figures several pages show: the store by kind of object, the jobs waiting, running and finished, friends online.

Gathered here once so the dashboard, the storage and jobs pages and the live updates agree.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from shared.chunkstore import ChunkStore
from tracker.config import TrackerContext
from tracker.db import admin_views, job_log
from tracker.errors import QueueUnavailable
from tracker.routes.swarm import SWARM


@dataclass
class Kind:
    count: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class StoreFigures:
    chunks: Kind
    manifests: Kind
    patches: Kind

    @property
    def total(self) -> Kind:
        return Kind(
            self.chunks.count + self.manifests.count + self.patches.count,
            self.chunks.bytes + self.manifests.bytes + self.patches.bytes,
        )


def classify(store: ChunkStore, manifests: set[str], patches: set[str]) -> StoreFigures:
    """Every stored object counted and sized as a manifest, a patch or (anything else) a chunk."""
    figures = StoreFigures(Kind(), Kind(), Kind())
    for stored in store.listing():
        name, size = stored.name, stored.size
        kind = figures.manifests if name in manifests else figures.patches if name in patches else figures.chunks
        kind.count += 1
        kind.bytes += size
    return figures


DASHBOARD_MAX_AGE = 60.0  # seconds the dashboard may show figures already worked out; the storage page counts anew
_counted: dict[str, tuple[float, StoreFigures]] = {}  # store root -> (when, figures)


async def store_figures(ctx: TrackerContext, max_age: float = 0.0) -> StoreFigures:
    """The store by kind of object: counted now (a stat per object), or as counted within `max_age` seconds."""
    key = ctx.store.where
    found = _counted.get(key)
    if found is not None and time.monotonic() - found[0] < max_age:
        return found[1]
    manifests, patches = await ctx.db.run(admin_views.known_objects)
    figures = await asyncio.to_thread(classify, ctx.store, manifests, patches)
    _counted[key] = (time.monotonic(), figures)
    return figures


@dataclass(frozen=True)
class Waiting:
    """A job in the queue that no worker has started yet."""

    id: str
    task: str
    args: tuple[Any, ...]
    scheduled: bool


def waiting(ctx: TrackerContext) -> list[Waiting] | None:
    """Jobs waiting in the queue (scheduled retries included), or None while the queue does not answer."""
    try:
        return [Waiting(*job) for job in ctx.jobs.waiting()]
    except QueueUnavailable:  # the queue's own layer translated its storage's error: the page says it does not answer
        return None


@dataclass(frozen=True)
class JobsNow:
    waiting: list[Waiting] | None
    recent: list[job_log.JobRow]

    @property
    def running(self) -> list[job_log.JobRow]:
        return [j for j in self.recent if j.state == job_log.RUNNING]

    @property
    def failed(self) -> list[job_log.JobRow]:
        return [j for j in self.recent if j.state == job_log.FAILED]


async def jobs_now(ctx: TrackerContext, limit: int = 50) -> JobsNow:
    queued = await asyncio.to_thread(waiting, ctx)
    recent = await ctx.db.run(lambda s: job_log.recent(s, limit))
    return JobsNow(queued, recent)


@dataclass(frozen=True)
class Online:
    user: str
    sharing: bool
    games: tuple[str, ...]
    builds: int


def online(request: web.Request) -> list[Online]:
    """Friends' clients connected now, one line per connection, with what they share."""
    members = list(request.config_dict[SWARM].members.values())
    found = [Online(m.viewer.user, m.sharing, tuple(sorted(set(m.builds.values()))), len(m.builds)) for m in members]
    return sorted(found, key=lambda o: o.user)
