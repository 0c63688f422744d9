"""The download queue: installs, updates and repairs, one at a time, in an order the friend chooses.

Whatever starts a job (the app, or `mist install` / `mist update` through the
daemon) puts it here, so each shows in the other. The first queued job runs;
pausing cancels its task, and because every install resumes from its staged
files, resuming (also after the daemon or the machine restarted: the queue is
saved in MIST_HOME/downloads.json) re-runs it without fetching again what was
verified. Moving a job to the top starts it now and puts the running one back
second. Cancelling also removes its staged files. Progress is sampled once a
second into speed, ETA and a speed history for the chart.

The queue carries jobs out through `run`, a function it is given (client/app/runner.py),
so its decisions are tested without an installer.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.durable import write_atomic
from client.progress import Bar, Progress
from client.errors import ClientError
from shared.errors import MistError

QUEUE_FILE = "downloads.json"
QUEUED, RUNNING, PAUSED, WAITING = "queued", "downloading", "paused", "waiting"
DONE, FAILED, CANCELLED = "done", "failed", "cancelled"
ACTIVE = (QUEUED, RUNNING, PAUSED, WAITING)
OPS = ("install", "update", "repair")
HISTORY = 300  # one speed sample a second: the chart's last five minutes
FINISHED_KEPT = 20
ETA_WINDOW = 10  # seconds of samples the ETA averages over


class QueueError(ClientError):
    """A queue operation that cannot be done (unknown job, a game already queued); the message says why."""


@dataclass(eq=False)
class Job:
    """One install, update or repair, with its live progress."""

    id: str
    op: str
    game: str
    title: str
    dir: str
    version: str | None = None  # the target; None: the newest when it runs
    overwrite: bool = False
    origin: str = "app"  # "app" or "cli"
    yes: bool = False  # go ahead even if the new version removes most of the install (the friend said so)
    state: str = QUEUED
    added: float = field(default_factory=time.time)
    error: str = ""
    message: str = ""
    done: int = 0  # bytes of the new files assembled so far
    total: int = 0
    from_peers: int = 0  # bytes received from friends, and from the server (seeder), so far
    from_server: int = 0
    speed: float = 0.0  # bytes/s assembled, over the last second
    eta: float | None = None
    speeds: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))
    result: dict[str, Any] | None = None
    finished: float | None = None
    confirm: str = ""  # why the job stopped to ask (it would remove most of the install); empty otherwise

    def __repr__(self) -> str:
        return f"Job({self.id}, {self.op} {self.game}, {self.state}, {self.done}/{self.total})"

    @property
    def percent(self) -> float:
        if self.state == DONE:
            return 100.0
        return round(100.0 * self.done / self.total, 1) if self.total else 0.0

    def _what(self) -> dict[str, Any]:
        """The job itself, as the page and the queue file both name it."""
        return {
            "id": self.id,
            "op": self.op,
            "game": self.game,
            "title": self.title,
            "dir": self.dir,
            "version": self.version,
            "origin": self.origin,
            "added": self.added,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            **self._what(),
            "state": self.state,
            "error": self.error,
            "message": self.message,
            "done": self.done,
            "total": self.total,
            "percent": self.percent,
            "from_peers": self.from_peers,
            "from_server": self.from_server,
            "speed": round(self.speed),
            "eta": None if self.eta is None else round(self.eta),
            "speeds": [round(s) for s in self.speeds],
            "result": self.result,
            "finished": self.finished,
            "confirm": self.confirm,
        }

    def saved(self) -> dict[str, Any]:
        """What survives a restart: the job, not its moment's progress (a resumed run measures it again)."""
        return {
            **self._what(),
            "overwrite": self.overwrite,
            "yes": self.yes,
            "state": PAUSED if self.state == PAUSED else QUEUED,
        }


class JobProgress:
    """The installer's Progress for one job: counts into the job, and passes everything on to listeners
    (a `mist install` waiting on the other end of the local API)."""

    def __init__(self, job: Job, changed: Callable[[], None]) -> None:
        self.job, self.changed = job, changed
        self.listeners: list[Progress] = []
        self.bars: list[_Bar] = []

    def bar(self, description: str, total: int) -> Bar:
        self.job.total += total
        made = _Bar(self, [listener.bar(description, total) for listener in self.listeners], description, total)
        self.bars.append(made)
        return made

    def attach(self, listener: Progress) -> None:
        """A listener that comes late (a CLI run again after Ctrl-C) gets the bars so far, filled as far as they are."""
        for made in self.bars:
            late = listener.bar(made.description, made.total)
            late.advance(made.done)
            made.bars.append(late)
        self.listeners.append(listener)

    def say(self, message: str) -> None:
        self.job.message = message
        for listener in self.listeners:
            listener.say(message)
        self.changed()

    def __enter__(self) -> "JobProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class _Bar:
    def __init__(self, progress: JobProgress, bars: list[Bar], description: str, total: int) -> None:
        self.progress, self.bars, self.description, self.total = progress, bars, description, total
        self.done = 0

    def advance(self, amount: int) -> None:
        self.done += amount
        self.progress.job.done += amount
        for bar in self.bars:
            bar.advance(amount)


Run = Callable[[Job, JobProgress], Coroutine[Any, Any, dict[str, Any]]]
Tell = Callable[[str, dict[str, Any]], None]


def next_to_run(jobs: list[Job]) -> Job | None:
    """The first queued job in the friend's order (paused ones wait for a resume)."""
    return next((j for j in jobs if j.state == QUEUED), None)


class Downloads:
    def __init__(
        self,
        home: Path,
        run: Run,
        tell: Tell,
        clock: Callable[[], float] = time.monotonic,
        sample_every: float = 1.0,
        clean: Callable[[Job], Awaitable[None]] | None = None,
    ) -> None:
        self.path = home / QUEUE_FILE
        self.run_job, self.tell, self.clock, self.sample_every, self.clean = run, tell, clock, sample_every, clean
        self.jobs: list[Job] = []  # active jobs, in order
        self.finished: deque[Job] = deque(maxlen=FINISHED_KEPT)
        self.running: tuple[Job, asyncio.Task[dict[str, Any]], JobProgress] | None = None
        self.ended: dict[str, asyncio.Event] = {}
        self.counters: list[Callable[[], tuple[int, int]]] = []  # (from peers, from server) of the running job
        self._wake = asyncio.Event()
        self._load()

    def __repr__(self) -> str:
        return f"Downloads(active={len(self.jobs)}, running={self.running[0] if self.running else None})"

    # ---- what the friend does ------------------------------------------------------------------------

    def add(
        self,
        op: str,
        game: str,
        title: str,
        directory: str,
        version: str | None = None,
        overwrite: bool = False,
        origin: str = "app",
        yes: bool = False,
    ) -> Job:
        if op not in OPS:
            raise QueueError(f"unknown job {op!r}; the jobs are {', '.join(OPS)}")
        same = self.active_for(game)
        if same is not None:
            if same.op == op and same.version == version:
                same.yes = same.yes or yes
                if same.state == PAUSED:
                    self.resume(same.id)
                return same  # asked again (a CLI re-run after Ctrl-C): the same job
            raise QueueError(
                f"{title} is already in the download queue ({same.op}, {same.state}); "
                "wait for it, or cancel it in the app's Downloads page"
            )
        job = Job(secrets.token_hex(6), op, game, title, directory, version, overwrite, origin, yes)
        self.jobs.append(job)
        self.ended[job.id] = asyncio.Event()
        self._changed(job)
        return job

    def find(self, job_id: str) -> Job:
        job = next((j for j in [*self.jobs, *self.finished] if j.id == job_id), None)
        if job is None:
            raise QueueError(f"no download {job_id!r} in the queue (finished ones are kept for a while only)")
        return job

    def active_for(self, game: str) -> Job | None:
        return next((j for j in self.jobs if j.game == game), None)

    def pause(self, job_id: str) -> Job:
        job = self._active(job_id)
        if job.state != PAUSED:
            job.state = PAUSED
            self._stop_if_running(job)
            self._changed(job)
        return job

    def resume(self, job_id: str) -> Job:
        job = self._active(job_id)
        if job.state == PAUSED:
            job.state = QUEUED
            job.error = ""
            self._changed(job)
        return job

    def cancel(self, job_id: str) -> Job:
        job = self._active(job_id)
        job.state = CANCELLED
        if not self._stop_if_running(job):
            self._end(job)
        return job

    def top(self, job_id: str) -> Job:
        """First in the queue, and running now: the running job goes back to second place, queued."""
        job = self._active(job_id)
        self.jobs.remove(job)
        self.jobs.insert(0, job)
        if job.state == PAUSED:
            job.state = QUEUED
        if self.running is not None and self.running[0] is not job:
            other = self.running[0]
            other.state = QUEUED
            self._stop_if_running(other)
        self._changed(job)
        return job

    # ---- carrying jobs out ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Run queued jobs one at a time, for as long as the daemon runs."""
        while True:
            job = next_to_run(self.jobs) if self.running is None else None
            if job is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            await self._carry_out(job)

    async def _carry_out(self, job: Job) -> None:
        job.state, job.error, job.done, job.total, job.speed, job.eta = RUNNING, "", 0, 0, 0.0, None
        progress = JobProgress(job, lambda: self.tell("progress", job.to_json()))  # a message: no state changed
        task = asyncio.create_task(self.run_job(job, progress), name=f"job {job.id}")
        self.running = (job, task, progress)
        self._changed(job)
        sampler = asyncio.create_task(self._sample(job))
        try:
            await asyncio.wait([task])
        except asyncio.CancelledError:  # the daemon stops: the job stops with it, and resumes at the next start
            task.cancel()
            await asyncio.wait([task])
            raise
        finally:
            sampler.cancel()
            await asyncio.wait([sampler])
            self.running = None
        if task.cancelled():  # paused, cancelled or moved down: the state says which
            if job.state == CANCELLED:
                if self.clean is not None:
                    await self.clean(job)
                self._end(job)
            else:
                job.speed, job.eta = 0.0, None
                self._changed(job)
            return
        error = task.exception()
        if error is None:
            job.result, job.state = task.result(), DONE
            job.done = max(job.done, job.total)
        elif (why := describe(error)) is not None:
            job.state, job.error = FAILED, why
            job.confirm = str(getattr(error, "why", ""))  # NotConfirmed: the app asks, and a new job may go ahead
        else:
            raise error
        self._end(job)

    def _stop_if_running(self, job: Job) -> bool:
        if self.running is not None and self.running[0] is job:
            self.running[1].cancel()
            return True
        return False

    async def _sample(self, job: Job) -> None:
        last, then = job.done, self.clock()
        while True:
            await asyncio.sleep(self.sample_every)
            now = self.clock()
            job.speed = max(0.0, (job.done - last) / max(now - then, 1e-6))
            job.speeds.append(job.speed)
            last, then = job.done, now
            recent = list(job.speeds)[-ETA_WINDOW:]
            average = sum(recent) / len(recent)
            job.eta = (job.total - job.done) / average if average > 0 and job.total else None
            for counter in self.counters:
                job.from_peers, job.from_server = counter()
            self.tell("progress", job.to_json())

    def waiting(self, job: Job, waiting: bool) -> None:
        """The job's files are staged and it waits for its game to close (or stopped waiting)."""
        if job.state in (RUNNING, WAITING):
            job.state = WAITING if waiting else RUNNING
            self._changed(job)

    # ---- bookkeeping ---------------------------------------------------------------------------------

    def _active(self, job_id: str) -> Job:
        job = next((j for j in self.jobs if j.id == job_id), None)
        if job is None:
            raise QueueError(f"no download {job_id!r} waiting or running; it may have finished")
        return job

    def _end(self, job: Job) -> None:
        job.finished = time.time()
        job.speed, job.eta = 0.0, None
        if job in self.jobs:
            self.jobs.remove(job)
        self.finished.appendleft(job)
        self._changed(job)
        event = self.ended.pop(job.id, None)
        if event is not None:
            event.set()
        self.tell("finished", job.to_json())

    def _changed(self, job: Job) -> None:
        self._save()
        self._wake.set()
        self.tell("job", job.to_json())

    def _save(self) -> None:
        body = {"jobs": [j.saved() for j in self.jobs]}
        write_atomic(self.path, (json.dumps(body, indent=1) + "\n").encode())

    def _load(self) -> None:
        try:
            body = json.loads(self.path.read_text(encoding="utf-8"))
            for item in body["jobs"]:
                job = Job(
                    str(item["id"]),
                    str(item["op"]),
                    str(item["game"]),
                    str(item["title"]),
                    str(item["dir"]),
                    item.get("version"),
                    bool(item.get("overwrite")),
                    str(item.get("origin", "app")),
                    bool(item.get("yes")),
                    PAUSED if item.get("state") == PAUSED else QUEUED,
                    float(item.get("added", time.time())),
                )
                if job.op in OPS:
                    self.jobs.append(job)
                    self.ended[job.id] = asyncio.Event()
        except FileNotFoundError:
            return
        except (ValueError, KeyError, TypeError):
            # A damaged queue file: start empty (staged work stays in each folder; installing again resumes it).
            self.path.replace(self.path.with_suffix(".damaged"))

    def to_json(self) -> dict[str, Any]:
        return {"active": [j.to_json() for j in self.jobs], "finished": [j.to_json() for j in self.finished]}


def describe(error: BaseException) -> str | None:
    """What a failed job tells the friend: a Mist or disk error in one line; None for a bug (it is raised)."""
    from client.commandline import disk_error

    if isinstance(error, BaseExceptionGroup):
        inner = next((d for e in error.exceptions if (d := describe(e)) is not None), None)
        return inner
    if isinstance(error, MistError):
        return str(error)
    if isinstance(error, OSError):
        return disk_error(error)
    return None
