"""PostgreSQL and Redis fail under a running tracker: each ends in a clear error or a retry, never a half-committed build.

These tests start their own PostgreSQL and Redis (scripts/test-backends), since they stop and restart them.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import backends
from tests.e2e.conftest import ADMIN_PASSWORD, BIN, FRIEND_PASSWORD, Person, free_port, start_server
from tests.e2e.gametree import MB, assert_same_tree, make_tree, next_version
from tests.e2e.test_faults import one_line_error
from tests.e2e.test_split_services import start
from tests.waiting import wait_until

pytestmark = pytest.mark.same_on_every_backend  # starts a PostgreSQL and a Redis of its own

SCRIPT = Path(__file__).parents[2] / "scripts" / "test-backends"


@dataclass
class OwnBackends:
    """A PostgreSQL and a Redis that only this test uses, so it may stop and start them."""

    dir: Path
    postgres: str
    redis: str

    def ctl(self, action: str) -> None:
        subprocess.run([SCRIPT, action, str(self.dir)], check=True, capture_output=True, timeout=120)

    def env(self, queue: str) -> dict[str, str]:
        return {"MIST_DATABASE_URL": backends.new_database(self.postgres), "MIST_REDIS_URL": self.redis,
                "MIST_QUEUE_NAME": queue}


@pytest.fixture
def own() -> Iterator[OwnBackends]:
    where = Path(tempfile.mkdtemp(prefix="mist-backends-"))  # not under pytest's 0700 tmp: postgres must reach it
    where.chmod(0o755)
    started = subprocess.run([SCRIPT, "start", str(where / "b")], check=True, capture_output=True, text=True, timeout=120)
    env = dict(re.findall(r"export (\w+)='([^']*)'", started.stdout))
    backends_ = OwnBackends(where / "b", env["MIST_TEST_POSTGRES"], env["MIST_TEST_REDIS"])
    try:
        yield backends_
    finally:
        backends_.ctl("stop")
        shutil.rmtree(where, ignore_errors=True)


def objects(store: Path) -> int:
    return sum(1 for p in store.rglob("*") if p.is_file()) if store.exists() else 0


def test_the_database_stopping_mid_push_fails_it_clearly_and_the_next_push_completes(own: OwnBackends, tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_server(data, own.env("midpush"))
    try:
        admin = Person(tmp_path / "admin", ADMIN_PASSWORD)
        admin.run("mistpipe", "login", server.url, "--user", "admin")
        admin.run("mistpipe", "new-game", "sturdy", "--title", "Sturdy")
        tree = make_tree(tmp_path / "tree", seed=61, small_files=20, large=(24 * MB,))
        before = objects(data / "store")
        pushing = subprocess.Popen(
            [BIN / "mistpipe", "push", "sturdy", str(tree), "--version", "1"],
            env={**os.environ, "MIST_HOME": str(admin.home), "MIST_PASSWORD": admin.password},
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        wait_until(lambda: objects(data / "store") > before, "the push's first chunks to arrive", 120, 0.01)
        os.kill(pushing.pid, signal.SIGSTOP)  # chunks are arriving; hold the push there
        assert admin.json("mistpipe", "ls", "sturdy")["games"][0]["builds"] == [], "the push got to commit too soon"
        own.ctl("stop-postgres")
        os.kill(pushing.pid, signal.SIGCONT)
        _, said = pushing.communicate(timeout=180)
        one_line_error(subprocess.CompletedProcess([], pushing.returncode, "", said), "database is unavailable", "try again")

        own.ctl("start-postgres")
        # The tracker reconnects by itself, and no half of the build was committed.
        assert admin.json("mistpipe", "ls", "sturdy")["games"][0]["builds"] == []
        again = admin.json("mistpipe", "push", "sturdy", str(tree), "--version", "1")
        assert again["chunks_uploaded"] < again["chunks_total"], "the chunks the first push sent were kept"
        admin.run("mistpipe", "user", "add", "dana", env={"MIST_PASSWORD": FRIEND_PASSWORD})
        dana = Person(tmp_path / "dana", FRIEND_PASSWORD)
        dana.run("mist", "login", server.url, "--user", "dana")
        dana.json("mist", "install", "sturdy", "--dir", str(tmp_path / "game"))
        assert_same_tree(tree, tmp_path / "game")
    finally:
        server.process.terminate()
        server.process.wait(timeout=10)


def test_jobs_queued_in_redis_survive_its_restart_and_a_push_while_it_is_down_still_lands(own: OwnBackends, tmp_path: Path) -> None:
    data = tmp_path / "data"
    tracker_port, seeder_port = free_port(), free_port()
    tracker_url = f"http://127.0.0.1:{tracker_port}"
    env = {**os.environ, "MIST_ADMIN_PASSWORD": ADMIN_PASSWORD, **own.env("restart")}
    processes = []
    try:
        processes.append(start([BIN / "mist-tracker", "--data", str(data), "--port", str(tracker_port),
                                "--seeder-url", f"http://127.0.0.1:{seeder_port}/seeder"], env))
        processes.append(start([BIN / "mist-seeder", "--store", str(data / "store"), "--port", str(seeder_port),
                                "--tracker-url", tracker_url]))
        admin = Person(tmp_path / "admin", ADMIN_PASSWORD)
        admin.run("mistpipe", "login", tracker_url, "--user", "admin")
        admin.run("mistpipe", "new-game", "queued", "--title", "Queued")
        one = make_tree(tmp_path / "1", seed=71, small_files=60, large=(2 * MB,))
        two = next_version(one, tmp_path / "2", seed=72)
        admin.json("mistpipe", "push", "queued", str(one), "--version", "1")
        job = admin.json("mistpipe", "push", "queued", str(two), "--version", "2")["patch_job"]
        assert job and admin.json("mistpipe", "job", job)["done"] is False  # no worker runs yet

        own.ctl("stop-redis")
        # With the queue down, a push still lands its build and says what it could not do.
        three = next_version(two, tmp_path / "3", seed=73)
        pushed = admin.json("mistpipe", "push", "queued", str(three), "--version", "3")
        assert "job queue is unavailable" in pushed["warning"] and pushed["patch_job"] == ""
        one_line_error(admin.run("mistpipe", "job", job, check=False), "job queue is unavailable", "try again")
        own.ctl("start-redis")

        assert [b["version"] for b in admin.json("mistpipe", "ls", "queued")["games"][0]["builds"]] == ["1", "2", "3"]
        processes.append(subprocess.Popen([BIN / "mist-worker", "--data", str(data)], env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        done = admin.json("mistpipe", "job", job, "--wait")
        assert done["done"] and "error" not in done["result"] and done["result"]["pairs"] > 0, done
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
