"""The download queue's decisions with a stand-in for the installer: order, pause, resume, cancel, move to top,
what a restart keeps, and failures told in words. No sockets, no sleeps: each job waits on an event."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from client.app import downloads
from client.app.downloads import CANCELLED, DONE, FAILED, PAUSED, QUEUED, RUNNING, Downloads, Job, JobProgress, QueueError
from client.errors import NotConfirmed
from shared.errors import MistError


class Work:
    """Jobs that run until the test lets them finish (or fail), recording each start."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.release: dict[str, asyncio.Event] = {}
        self.fail: dict[str, BaseException] = {}
        self.cleaned: list[str] = []
        self.running = asyncio.Event()

    async def __call__(self, job: Job, progress: JobProgress) -> dict[str, Any]:
        self.started.append(job.game)
        bar = progress.bar("Assembling", 100)
        bar.advance(40)
        self.running.set()
        gate = self.release.setdefault(job.game, asyncio.Event())
        await gate.wait()
        gate.clear()
        if job.game in self.fail:
            raise self.fail.pop(job.game)
        bar.advance(60)
        return {"version": "1.0"}

    async def clean(self, job: Job) -> None:
        self.cleaned.append(job.game)


async def until(check, what) -> None:  # type: ignore[no-untyped-def]
    """Let the queue's tasks run until `check` holds (no wall-clock wait; a deadline only for a broken queue)."""
    try:
        async with asyncio.timeout(10):
            while not check():
                await asyncio.sleep(0)
    except TimeoutError:
        raise AssertionError(f"never happened: {what() if callable(what) else what}") from None


@pytest.fixture
async def queue(tmp_path: Path):  # type: ignore[no-untyped-def]
    work = Work()
    told: list[tuple[str, dict]] = []
    q = Downloads(tmp_path, work, lambda kind, data: told.append((kind, data)), sample_every=3600, clean=work.clean)
    runner = asyncio.create_task(q.run())
    yield q, work, told
    runner.cancel()
    await asyncio.wait([runner])


def states(q: Downloads) -> list[tuple[str, str]]:
    return [(j.game, j.state) for j in q.jobs]


async def test_jobs_run_one_at_a_time_in_order_and_report_their_progress(queue) -> None:  # type: ignore[no-untyped-def]
    q, work, told = queue
    a, b = q.add("install", "a", "A", "/games/a"), q.add("install", "b", "B", "/games/b")
    await until(lambda: work.started == ["a"], "a to start")
    assert states(q) == [("a", RUNNING), ("b", QUEUED)] and a.percent == 40.0
    work.release["a"].set()
    await until(lambda: work.started == ["a", "b"], "b to start after a")
    assert a.state == DONE and a.percent == 100.0 and a.result == {"version": "1.0"} and list(q.finished) == [a]
    assert q.ended.get(a.id) is None  # its waiters were woken and let go
    work.release["b"].set()
    await until(lambda: b.state == DONE, "b to finish")
    assert [kind for kind, data in told if kind == "finished"] == ["finished", "finished"]


async def test_pause_keeps_the_job_and_resume_runs_it_again(queue) -> None:  # type: ignore[no-untyped-def]
    q, work, _ = queue
    a = q.add("install", "a", "A", "/games/a")
    await until(lambda: a.state == RUNNING and work.running.is_set(), "a to run")
    q.pause(a.id)
    await until(lambda: q.running is None, "the task to stop")
    assert a.state == PAUSED and work.cleaned == []  # staged work stays for the resume
    assert json.loads((q.path).read_text())["jobs"][0]["state"] == PAUSED
    q.resume(a.id)
    await until(lambda: work.started == ["a", "a"], "a to run again")
    work.release["a"].set()
    await until(lambda: a.state == DONE, "a to finish")


async def test_cancel_cleans_up_and_top_starts_a_job_now(queue) -> None:  # type: ignore[no-untyped-def]
    q, work, _ = queue
    a, b, c = (q.add("install", g, g.upper(), f"/games/{g}") for g in "abc")
    await until(lambda: work.started == ["a"], "a to run")
    q.top(c.id)
    await until(lambda: work.started == ["a", "c"], "c to start at once")
    assert states(q) == [("c", RUNNING), ("a", QUEUED), ("b", QUEUED)]
    q.cancel(b.id)  # waiting: ends at once
    assert b.state == CANCELLED and work.cleaned == []
    q.cancel(c.id)  # running: stopped, then its staged files go
    await until(lambda: work.cleaned == ["c"], "c's staging to be cleaned")
    assert c.state == CANCELLED
    await until(lambda: work.started[-1] == "a", lambda: f"a to run again {states(q)} {work.started} {q.running}")
    with pytest.raises(QueueError, match="no download"):
        q.pause("nope")


async def test_the_same_job_asked_again_is_the_same_and_another_for_the_game_is_refused(queue) -> None:  # type: ignore[no-untyped-def]
    q, work, _ = queue
    a = q.add("install", "a", "A", "/games/a", origin="cli")
    q.pause(a.id)
    assert q.add("install", "a", "A", "/games/a") is a and a.state in (QUEUED, RUNNING)  # a CLI re-run resumes it
    with pytest.raises(QueueError, match="already in the download queue"):
        q.add("update", "a", "A", "/games/a")
    with pytest.raises(QueueError, match="unknown job"):
        q.add("explode", "x", "X", "/x")


async def test_a_failure_is_told_in_words_and_an_unconfirmed_update_says_why(queue) -> None:  # type: ignore[no-untyped-def]
    q, work, _ = queue
    a, b = q.add("update", "a", "A", "/games/a"), q.add("update", "b", "B", "/games/b")
    work.fail["a"] = ExceptionGroup("download", [MistError("the seeder is gone; try again later")])
    work.fail["b"] = NotConfirmed("1.0 removes 90% of the files")
    work.release["a"] = asyncio.Event()
    work.release["a"].set()
    await until(lambda: a.state == FAILED, "a to fail")
    assert a.error == "the seeder is gone; try again later" and a.confirm == ""
    await until(lambda: "b" in work.release, "b to start")
    work.release["b"].set()
    await until(lambda: b.state == FAILED, "b to stop and ask")
    assert b.confirm == "1.0 removes 90% of the files" and "--yes" in b.error


def test_a_restart_resumes_the_queue_in_its_order_and_a_damaged_file_is_set_aside(tmp_path: Path) -> None:
    (tmp_path / downloads.QUEUE_FILE).write_text(json.dumps({"jobs": [
        {"id": "1", "op": "install", "game": "a", "title": "A", "dir": "/a", "state": "downloading"},
        {"id": "2", "op": "update", "game": "b", "title": "B", "dir": "/b", "state": "paused", "yes": True},
        {"id": "3", "op": "explode", "game": "c", "title": "C", "dir": "/c"}]}))
    q = Downloads(tmp_path, Work(), lambda kind, data: None)
    assert [(j.id, j.state, j.yes) for j in q.jobs] == [("1", QUEUED, False), ("2", PAUSED, True)]
    (tmp_path / downloads.QUEUE_FILE).write_text("{not json")
    assert Downloads(tmp_path, Work(), lambda kind, data: None).jobs == []
    assert (tmp_path / "downloads.damaged").exists()


class Recorder:
    """A CLI on the other end: the bars it was given and how far each went."""

    def __init__(self) -> None:
        self.bars: list[list[int]] = []
        self.said: list[str] = []

    def bar(self, description: str, total: int):  # type: ignore[no-untyped-def]
        record = [total, 0]
        self.bars.append(record)

        class One:
            def advance(self, amount: int) -> None:
                record[1] += amount

        return One()

    def say(self, message: str) -> None:
        self.said.append(message)

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def test_a_listener_attached_late_gets_the_bars_as_far_as_they_went() -> None:
    job = Job("1", "install", "a", "A", "/a")
    progress = JobProgress(job, lambda: None)
    early, late = Recorder(), Recorder()
    progress.listeners.append(early)
    bar = progress.bar("Assembling", 100)
    bar.advance(30)
    progress.attach(late)
    bar.advance(20)
    progress.say("halfway")
    assert early.bars == [[100, 50]] and late.bars == [[100, 50]] and late.said == ["halfway"]
    assert (job.done, job.total, job.percent) == (50, 100, 50.0)
