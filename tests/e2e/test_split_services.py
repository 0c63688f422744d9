"""The parts alone: mist-tracker, mist-seeder and mist-worker as separate processes over one data directory."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from tests import backends
from tests.e2e.conftest import ADMIN_PASSWORD, BIN, FRIEND_PASSWORD, Person, free_port
from tests.e2e.gametree import MB, assert_same_tree, make_tree


class Service(subprocess.Popen):
    """A service process whose stderr is read all along (its JSON log lines would fill the pipe and stop it)."""

    def __init__(self, args: list, env: dict[str, str] | None = None) -> None:
        super().__init__(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._said = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.stderr is not None
        for line in self.stderr:
            with self._said:
                self.lines.append(line)
                self._said.notify_all()
        with self._said:
            self._said.notify_all()

    def wait_for_line(self, found: Callable[[str], bool], timeout: float = 60) -> str:
        """The first line `found` accepts, waiting for the process to write it; AssertionError if it exits first."""
        def seen() -> str | None:
            return next((line for line in self.lines if found(line)), None)

        with self._said:
            self._said.wait_for(lambda: seen() is not None or not self._reader.is_alive(), timeout)
            line = seen()
        if line is None:
            raise AssertionError(f"{self.args[0]} did not say it (exit code {self.poll()}):\n" + "".join(self.lines))
        return line


def start(args: list, env: dict[str, str] | None = None) -> Service:
    """Start a service and wait for the line that says it listens (not for a fixed time)."""
    process = Service(args, env)
    process.wait_for_line(lambda line: " listening on " in line)
    return process


def test_tracker_seeder_and_worker_run_as_separate_services(tmp_path: Path) -> None:
    data = tmp_path / "data"
    tracker_port, seeder_port = free_port(), free_port()
    tracker_url, seeder_url = f"http://127.0.0.1:{tracker_port}", f"http://127.0.0.1:{seeder_port}/seeder"
    env = {**os.environ, "MIST_ADMIN_PASSWORD": ADMIN_PASSWORD, **backends.backend_env(data)}
    processes = []
    try:
        processes.append(start([BIN / "mist-tracker", "--data", str(data), "--port", str(tracker_port),
                                "--seeder-url", seeder_url], env))
        processes.append(start([BIN / "mist-seeder", "--store", str(data / "store"), "--port", str(seeder_port),
                                "--tracker-url", tracker_url]))

        admin = Person(tmp_path / "admin", ADMIN_PASSWORD)
        admin.run("mistpipe", "login", tracker_url, "--user", "admin")
        admin.run("mistpipe", "new-game", "split", "--title", "Split")
        tree = make_tree(tmp_path / "build", seed=41, small_files=20, large=(2 * MB,))
        # No worker yet: `push --wait` must say what it waits for instead of hanging in silence.
        pushing = subprocess.Popen(
            [BIN / "mistpipe", "push", "split", str(tree), "--version", "1", "--wait", "--json"],
            env={**os.environ, "MIST_HOME": str(admin.home), "MIST_PASSWORD": admin.password},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        assert pushing.stderr is not None
        said = pushing.stderr.readline()
        assert "still waiting for job" in said and "mist-worker" in said, said
        worker = subprocess.Popen([BIN / "mist-worker", "--data", str(data)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.append(worker)
        out, _ = pushing.communicate(timeout=60)
        pushed = json.loads(out)
        assert pushing.returncode == 0 and pushed["patches"]["made"] == 0  # nothing to patch from
        assert pushed["chunks_uploaded"] == pushed["chunks_total"]
        assert admin.json("mistpipe", "scrub")["result"]["corrupt"] == []  # the worker ran it

        admin.run("mistpipe", "user", "add", "carol", env={"MIST_PASSWORD": FRIEND_PASSWORD})
        carol = Person(tmp_path / "carol", FRIEND_PASSWORD)
        carol.run("mist", "login", tracker_url, "--user", "carol")
        installed = carol.json("mist", "install", "split", "--dir", str(tmp_path / "game"))
        assert installed["bytes_downloaded"] > 0
        assert_same_tree(tree, tmp_path / "game")
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
