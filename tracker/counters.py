"""What the tracker counts for /metrics: builds, failed logins, the swarm, friends' download tallies, the jobs.

Counters move in the handlers; who is online and the job queue are read at
scrape time (the queue's counts are kept by the worker in the queue's storage).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

from aiohttp import web

from shared.service.metrics import Counter, Reading, Registry
from tracker.errors import QueueUnavailable
from tracker.jobs.queue import Jobs

log = logging.getLogger("mist.metrics")


@dataclass
class TrackerCounters:
    builds_published: Counter
    logins_failed: Counter
    tallies: Counter
    peer_chunks: Counter
    peer_bytes: Counter
    seeder_bytes: Counter

    @classmethod
    def on(cls, registry: Registry) -> "TrackerCounters":
        return cls(
            registry.counter("mist_builds_published", "Builds committed to the catalog"),
            registry.counter("mist_logins_failed", "Password logins refused (wrong password, unknown or disabled user)"),
            registry.counter("mist_swarm_tallies", "Finished downloads friends' clients reported"),
            registry.counter(
                "mist_swarm_peer_chunks_reported", "Chunks friends reported receiving from other friends (peers), not the seeder"
            ),
            registry.counter("mist_swarm_peer_bytes_reported", "Bytes friends reported receiving from peers"),
            registry.counter(
                "mist_swarm_seeder_bytes_reported", "Bytes friends reported receiving from the seeder in the same downloads"
            ),
        )


COUNTERS = web.AppKey("counters", TrackerCounters)


def swarm_readings(members: int, sharing: int) -> Iterator[Reading]:
    yield Reading("mist_swarm_connections", "Clients connected to the swarm socket now", members)
    yield Reading("mist_swarm_sharing", "Connected clients that share with friends now", sharing)


def job_readings(jobs: Jobs) -> Iterator[Reading]:
    """The queue's numbers; none (and a warning) while its storage does not answer, so the rest still scrapes."""
    try:
        pending, outcomes = jobs.pending(), jobs.outcomes()
    except QueueUnavailable as exc:
        log.warning("job metrics left out of this scrape: %s", exc)
        return
    yield Reading("mist_jobs_pending", "Jobs waiting in the queue for a worker", pending)
    for (task, outcome), count in sorted(outcomes.items()):
        yield Reading(
            f"mist_jobs_{outcome}",
            f"Job runs that {outcome}, by task (counted by the workers)",
            count,
            "counter",
            (("task", task),),
        )
