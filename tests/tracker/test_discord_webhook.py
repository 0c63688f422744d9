"""The Discord poster: Discord's answers read right, retries decided right, and carried out by a real `mist-worker`
against a fake Discord on loopback (204, 429 with retry-after, 500, 404)."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
from tests import backends
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fake_discord import TOKEN, FakeDiscord, Reply, rate_limited
from tests.waiting import wait_until
from tracker.jobs import discord_webhook
from tracker.jobs.discord_webhook import ENV, MAX_DELAY, Answer, next_step, post, read_answer
from tracker.jobs.queue import Jobs, open_jobs

BIN = Path(sys.executable).parent


# ---- reading an answer and deciding what next (pure) ----------------------------------------------------

def test_the_wait_comes_from_retry_after_else_from_the_body() -> None:
    body = b'{"message": "You are being rate limited.", "retry_after": 0.25, "global": false}'
    assert read_answer(429, {"Retry-After": "2"}, body).retry_after == 2.0  # the header: always seconds
    assert read_answer(429, {"retry-after": "0.5"}, body).retry_after == 0.5
    assert read_answer(429, {}, body).retry_after == 0.25
    assert read_answer(429, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, body).retry_after == 0.25
    assert read_answer(429, {}, b"<html>slow down</html>").retry_after is None
    assert read_answer(404, {}, b'{"message": "Unknown Webhook", "code": 10015}') == Answer(404, None, "Unknown Webhook")
    assert read_answer(204, {}, b"").delivered


def test_delivered_is_done_and_a_wrong_webhook_is_not_retried() -> None:
    assert next_step(Answer(204), 1) == discord_webhook.Step(done=True, posted=True, reason="posted (attempt 1)")
    for status in (400, 401, 403, 404):
        step = next_step(Answer(status, None, "Unknown Webhook"), 1)
        assert step.done and not step.posted and ENV in step.reason and "not retried" in step.reason


def test_a_429_waits_exactly_as_long_as_discord_asks() -> None:
    step = next_step(Answer(429, 0.2, "You are being rate limited."), 1, rng=random.Random(1))
    assert (step.done, step.delay) == (False, 0.2)
    too_long = next_step(Answer(429, 3600.0), 1)
    assert too_long.done and not too_long.posted and "3600" in too_long.reason


def test_server_errors_and_silence_back_off_exponentially_with_jitter_up_to_a_ceiling() -> None:
    rng = random.Random(7)
    for attempt in range(1, 6):
        ceiling = 2.0 * 2 ** (attempt - 1)
        delays = [next_step(Answer(502), attempt, 6, 2.0, rng).delay for _ in range(200)]
        assert ceiling * 0.5 <= min(delays) and max(delays) <= ceiling
        assert max(delays) - min(delays) > ceiling * 0.3  # spread out, not one instant for everyone
    assert next_step(Answer(0, None, "Connection refused"), 20, 30, 2.0, rng).delay <= MAX_DELAY
    assert next_step(Answer(429), 2, 6, 2.0, rng).delay <= 4.0  # a 429 without a wait backs off like a 5xx


def test_the_last_attempt_gives_up_and_says_what_it_last_got() -> None:
    step = next_step(Answer(503, None, ""), 6, 6)
    assert step.done and not step.posted and step.reason == "gave up after 6 attempts; the last: Discord answered 503"
    silent = next_step(Answer(0, None, "timed out"), 3, 3)
    assert "no answer from Discord (timed out)" in silent.reason


# ---- one attempt against the fake ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def discord() -> Iterator[FakeDiscord]:
    with FakeDiscord() as fake:
        yield fake


def test_one_post_speaks_discord_s_format(discord: FakeDiscord) -> None:
    discord.script()
    assert post(discord.url, "Hollow Knight 1.1 is out, 38 MB update @everyone").delivered
    (seen,) = discord.wait_for(1)
    assert seen.body == {"content": "Hollow Knight 1.1 is out, 38 MB update @everyone", "allowed_mentions": {"parse": []}}
    assert seen.headers["Content-Type"] == "application/json" and "Mist" in seen.headers["User-Agent"]
    wrong = post(discord.url.replace(TOKEN, "deleted"), "x")
    assert (wrong.status, wrong.message) == (404, "Unknown Webhook")


def test_no_server_is_an_answer_with_status_0() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once it is closed
    answer = post(f"http://127.0.0.1:{port}/api/webhooks/1/x", "x", timeout=5)
    assert answer.status == 0 and not answer.delivered and answer.message


# ---- the whole delivery, retries included, by a real worker --------------------------------------------

@pytest.fixture(scope="module")
def worker(discord: FakeDiscord, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Jobs, Path]]:
    """`mist-worker` on its own queue, posting to the fake; (the queue, the worker's log)."""
    data = tmp_path_factory.mktemp("worker")
    log = data / "worker.log"
    with log.open("w") as out:
        process = subprocess.Popen([BIN / "mist-worker", "--data", str(data)], stdout=out, stderr=out,
                                   env={**os.environ, **backends.backend_env(data), ENV: discord.url})
    try:
        yield open_jobs(backends.settings(data)), log
    finally:
        process.terminate()
        process.wait(timeout=15)


def result(jobs: Jobs, job: str, log: Path, timeout: float = 60.0) -> dict:
    """The job's result once the worker has it (it lives in the worker's queue file)."""
    answer = wait_until(lambda: (found := jobs.result(job))[0] and found,
                        lambda: f"the job to finish; the worker said:\n{log.read_text()}", timeout, 0.05)
    return answer[1]


def test_a_429_is_retried_after_the_wait_discord_asked_for(discord: FakeDiscord, worker: tuple[Jobs, Path]) -> None:
    jobs, log = worker
    # Longer than huey's 1 s schedule tick, and the backoff is tiny, so a retry that ignored it would come early.
    discord.script(rate_limited(1.5))
    outcome = result(jobs, jobs.enqueue_news("Hollow Knight 1.1 is out", attempts=4, first_delay=0.01), log)
    first, second = discord.wait_for(2)
    assert second.at - first.at >= 1.5, second.at - first.at
    assert outcome == {"posted": True, "attempts": 2, "status": 204, "reason": "posted (attempt 2)"}
    assert len(discord.posts) == 2


def test_a_429_with_the_wait_only_in_the_body_is_honoured_too(discord: FakeDiscord, worker: tuple[Jobs, Path]) -> None:
    jobs, log = worker
    discord.script(rate_limited(1.5, in_header=False))
    outcome = result(jobs, jobs.enqueue_news("news", attempts=4, first_delay=0.01), log)
    first, second = discord.wait_for(2)
    assert second.at - first.at >= 1.5 and outcome["posted"]


def test_a_500_is_retried_and_then_posted(discord: FakeDiscord, worker: tuple[Jobs, Path]) -> None:
    jobs, log = worker
    discord.script(Reply(500))
    outcome = result(jobs, jobs.enqueue_news("Hollow Knight 1.1 is out", attempts=3, first_delay=0.1), log)
    assert outcome["posted"] and outcome["attempts"] == 2
    assert [p.body["content"] for p in discord.posts] == ["Hollow Knight 1.1 is out"] * 2


def test_persistent_500s_give_up_after_the_attempts_with_a_clear_result(discord: FakeDiscord, worker: tuple[Jobs, Path]) -> None:
    jobs, log = worker
    discord.script(*[Reply(500)] * 10)
    outcome = result(jobs, jobs.enqueue_news("news", attempts=3, first_delay=0.1), log)
    assert outcome == {"posted": False, "attempts": 3, "status": 500,
                       "reason": "gave up after 3 attempts; the last: Discord answered 500"}
    assert len(discord.posts) == 3  # the job is done: no more are coming


def test_a_404_is_not_retried_and_the_log_says_to_check_the_url(discord: FakeDiscord, worker: tuple[Jobs, Path]) -> None:
    jobs, log = worker
    discord.script(Reply(404))
    outcome = result(jobs, jobs.enqueue_news("news", attempts=5, first_delay=0.1), log)
    assert not outcome["posted"] and outcome["attempts"] == 1 and outcome["status"] == 404
    assert ENV in outcome["reason"] and "not retried" in outcome["reason"]
    assert len(discord.posts) == 1
    said = log.read_text()
    assert "not posted to Discord" in said and ENV in said
    assert TOKEN not in said  # the webhook's token never reaches a log


def test_without_the_webhook_url_nothing_is_posted_and_the_result_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    jobs = open_jobs(backends.settings(tmp_path))  # no discord_webhook_url
    job = jobs.enqueue_news("news")
    jobs.huey.execute(jobs.huey.dequeue())
    assert jobs.result(job) == (True, {"posted": False, "attempts": 0,
                                       "reason": f"{ENV} is not set in the worker's environment"})
