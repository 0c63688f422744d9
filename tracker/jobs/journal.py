"""The worker's journal of the jobs it runs, for the admin site: each start, progress, result or error.

Written from inside each task (tracker/jobs/queue.py wraps them), into the tracker's database. A journal that
cannot be written (the database is restarting) loses that line, never the job: the job's own work and
its result in the queue do not depend on it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from tracker.db import activity, job_log
from tracker.db.engine import Database

log = logging.getLogger("mist.jobs")
SUMMARY = {
    "scrub_store": "store scrub",
    "nightly_scrub": "nightly store scrub",
    "sync_steam": "Steam details",
    "make_patches": "patches",
    "collect_garbage": "garbage collection",
    "nightly_gc": "nightly garbage collection",
    "post_news": "Discord post",
}


class JobJournal:
    """Records each job's life in `job_log`, and its end in the activity log."""

    def __init__(self, database: Callable[[], Database], clock: Callable[[], float] = time.time) -> None:
        self._database = database
        self._clock = clock

    def __repr__(self) -> str:
        return "JobJournal()"

    def _write(self, what: str, fn: Callable[[Any], object]) -> None:
        try:
            self._database().call(fn)
        except Exception as exc:  # any database error: the job goes on without its journal line
            log.warning("could not write the job journal (%s): %s", what, exc)

    def started(self, job_id: str, task: str, args: list[Any]) -> None:
        now = self._clock()
        self._write("start", lambda s: job_log.started(s, job_id, task, args, now))

    def progress(self, job_id: str, done: int, total: int) -> None:
        self._write("progress", lambda s: job_log.progress(s, job_id, done, total))

    def finished(self, job_id: str, task: str, args: list[Any], result: object) -> None:
        now = self._clock()
        error = str(result.get("error") or "") if isinstance(result, dict) else ""

        def write(s: Any) -> None:
            job_log.finished(s, job_id, now, result)
            activity.record(s, _event(now, task, args, error))

        self._write("end", write)

    def failed(self, job_id: str, task: str, args: list[Any], error: str) -> None:
        now = self._clock()

        def write(s: Any) -> None:
            job_log.failed(s, job_id, now, error)
            activity.record(s, _event(now, task, args, error))

        self._write("failure", write)


def _event(now: float, task: str, args: list[Any], error: str) -> activity.Event:
    game = str(args[0]) if task in ("sync_steam", "make_patches") and args else ""
    version = str(args[1]) if task == "make_patches" and len(args) > 1 else ""
    what = SUMMARY.get(task, task)
    if error:
        return activity.Event(now, "job_failed", game=game, version=version, summary=f"{what} failed: {error}")
    return activity.Event(now, "job", game=game, version=version, summary=f"{what} done")
