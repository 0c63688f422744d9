"""`mist-server --seeder-processes N`: chunks come from N seeder processes on their own port, the tracker stays one."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

from tests.e2e.conftest import ADMIN_PASSWORD, FRIEND_PASSWORD, Person, free_port, start_server
from tests.e2e.gametree import MB, assert_same_tree, make_tree


def healthz_pids(url: str, wanted: int) -> set[int]:
    seen: set[int] = set()
    for _ in range(300):  # a new connection each: the kernel spreads them over the processes
        with urllib.request.urlopen(f"{url}/healthz", timeout=10) as response:
            seen.add(json.load(response)["pid"])
        if len(seen) == wanted:
            break
    return seen


def test_friends_fetch_from_the_seeder_processes_on_their_port(tmp_path: Path) -> None:
    seeder_port = free_port()
    server = start_server(tmp_path / "data", args=("--seeder-processes", "2", "--seeder-port", str(seeder_port)))
    try:
        with urllib.request.urlopen(f"{server.url}/api/info", timeout=10) as response:
            seeder_url = json.load(response)["seeder_url"]
        assert seeder_url == f"http://127.0.0.1:{seeder_port}/seeder"
        pids = healthz_pids(seeder_url, 2)
        assert len(pids) == 2 and server.process.pid not in pids

        admin = Person(tmp_path / "admin", ADMIN_PASSWORD)
        admin.run("mistpipe", "login", server.url, "--user", "admin")
        admin.run("mistpipe", "new-game", "apart", "--title", "Apart")
        tree = make_tree(tmp_path / "build", seed=43, small_files=10, large=(2 * MB,))
        admin.run("mistpipe", "push", "apart", str(tree), "--version", "1")
        admin.run("mistpipe", "user", "add", "dana", env={"MIST_PASSWORD": FRIEND_PASSWORD})
        dana = Person(tmp_path / "dana", FRIEND_PASSWORD)
        dana.run("mist", "login", server.url, "--user", "dana")
        installed = dana.json("mist", "install", "apart", "--dir", str(tmp_path / "game"))
        assert installed["bytes_downloaded"] > 0
        assert_same_tree(tree, tmp_path / "game")
    finally:
        server.process.terminate()
        assert server.process.wait(timeout=30) == 0
    for pid in pids:  # stopped with the server
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        raise AssertionError(f"seeder process {pid} outlived mist-server")
