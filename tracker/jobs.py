"""Background jobs (huey lives only here): a queue in the data directory, run by `mist-worker`.

The embedded default keeps the queue in SQLite beside the database; the tracker
enqueues, the worker process executes and stores results the tracker reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huey import SqliteHuey, crontab
from huey.api import TaskWrapper

from shared.chunkstore import DirectoryChunkStore
from tracker.scrub import scrub

RESULT_TTL = 7 * 24 * 3600


@dataclass
class Jobs:
    huey: SqliteHuey
    scrub_store: TaskWrapper

    def __repr__(self) -> str:
        return f"Jobs(queue={self.huey.storage.filename!r}, pending={self.huey.pending_count()})"

    def enqueue_scrub(self) -> str:
        job_id = str(self.scrub_store().id)
        self.huey.put(f"issued:{job_id}", True)
        return job_id

    def known(self, job_id: str) -> bool:
        """Whether this queue issued the job (it may still be waiting or running)."""
        return bool(self.huey.storage.has_data_for_key(f"issued:{job_id}"))

    def result(self, job_id: str) -> tuple[bool, Any]:
        """(done, result) for a job; the result stays readable after the first look."""
        sentinel = object()
        value = self.huey.result(job_id, preserve=True) if self.huey.storage.has_data_for_key(job_id) else sentinel
        return (value is not sentinel, None if value is sentinel else value)


def open_jobs(data: Path) -> Jobs:
    huey = SqliteHuey("mist", filename=str(data / "jobs.db"), results=True)
    store_root = data / "store"

    def scrub_now() -> dict[str, object]:
        return scrub(DirectoryChunkStore(store_root)).to_json()

    huey.periodic_task(crontab(hour="4", minute="17"), name="nightly_scrub")(scrub_now)
    return Jobs(huey, huey.task(name="scrub_store")(scrub_now))
