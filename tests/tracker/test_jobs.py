"""The job queue's answers: a job that raised is reported done with its error, never as an internal error."""

from __future__ import annotations

from tracker.jobs import open_jobs


def test_a_failed_job_is_done_with_its_error_and_an_unknown_one_is_not_done(tmp_path) -> None:
    jobs = open_jobs(tmp_path)

    @jobs.huey.task()
    def broken() -> None:
        raise RuntimeError("the disk caught fire")

    queued = broken()
    assert jobs.result(queued.id) == (False, None)
    jobs.huey.execute(jobs.huey.dequeue())
    done, result = jobs.result(queued.id)
    assert done and "the disk caught fire" in result["error"] and "log" in result["error"]
    assert jobs.result(queued.id)[0], "the result stays readable after the first look"
