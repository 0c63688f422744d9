"""The job queue's answers: a job that raised is reported done with its error, never as an internal error."""

from __future__ import annotations

from tests import backends
from tracker.jobs.queue import open_jobs


def test_a_failed_job_is_done_with_its_error_and_an_unknown_one_is_not_done(tmp_path) -> None:
    jobs = open_jobs(backends.settings(tmp_path))

    @jobs.huey.task()
    def broken() -> None:
        raise RuntimeError("the disk caught fire")

    queued = broken()
    assert jobs.result(queued.id) == (False, None)
    jobs.huey.execute(jobs.huey.dequeue())
    done, result = jobs.result(queued.id)
    assert done and "the disk caught fire" in result["error"] and "log" in result["error"]
    assert jobs.result(queued.id)[0], "the result stays readable after the first look"


def test_the_worker_counts_finished_and_failed_runs_in_the_queue_s_storage(tmp_path) -> None:
    jobs = open_jobs(backends.settings(tmp_path))
    assert jobs.pending() == 0 and set(jobs.outcomes().values()) == {0}
    jobs.enqueue_scrub()
    jobs.enqueue_scrub()
    assert jobs.pending() == 2
    jobs.huey.execute(jobs.huey.dequeue())  # the store is fine: finished
    (tmp_path / "store").rename(tmp_path / "moved")
    (tmp_path / "store").write_bytes(b"a file where the store should be")
    jobs.huey.execute(jobs.huey.dequeue())  # the scrub cannot open the store: failed
    assert jobs.pending() == 0
    # A second handle on the same queue (the tracker's, while the worker ran these) sees the same counts.
    counted = open_jobs(backends.settings(tmp_path)).outcomes()
    assert counted[("scrub_store", "finished")] == 1 and counted[("scrub_store", "failed")] == 1
    assert sum(counted.values()) == 2


def test_the_worker_journals_each_run_for_the_admin_site(tmp_path) -> None:
    from tracker.config import TrackerContext
    from tracker.db import activity, job_log

    ctx = TrackerContext.open(backends.settings(tmp_path))  # the tracker's database, which the worker writes to
    first, second = ctx.jobs.enqueue_scrub(), ctx.jobs.enqueue_scrub()
    worker = open_jobs(backends.settings(tmp_path))
    worker.huey.execute(worker.huey.dequeue())
    (tmp_path / "store").rename(tmp_path / "moved")
    (tmp_path / "store").write_bytes(b"a file where the store should be")
    worker.huey.execute(worker.huey.dequeue())
    done, failed = (ctx.db.call(lambda s, j=j: job_log.get(s, j)) for j in (first, second))
    assert done is not None and done.state == "done" and done.result is not None and "checked" in done.result
    assert failed is not None and failed.state == "failed" and failed.error and failed.finished_at
    events = ctx.db.call(lambda s: activity.recent(s, kinds=("job", "job_failed")))
    assert sorted(e.kind for e in events) == ["job", "job_failed"]
