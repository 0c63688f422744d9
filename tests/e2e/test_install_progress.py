"""Big installs (issue 20). What a `mist install` handed to the daemon streams while it works: it says so
while the signed manifest is fetched and checked, shows the bar with the bytes to write once the plan is
known and before the first byte lands, and the bar ends at exactly that total, also for a build that holds
the same content more than once; `mist install` handed over that way imports none of the engine and prints
its whole answer before it exits. And an install fetched a window of files at a time (`MIST_INSTALL_WINDOW`,
made small here) that is killed mid-way resumes to the exact build, keeping what every window staged."""

from __future__ import annotations

import json
import os
import random
import signal
import sys
from pathlib import Path
from typing import Any

from client.plain_http import post_lines
from tests.e2e.conftest import Person, Server
from tests.e2e.friend_app import Daemon
from tests.e2e.gametree import MB, assert_same_tree, make_tree

GAME = "progress"
# What an install handed to a running daemon must not import: each is a part of the engine, or of a client it
# does not need, and costs the command's start (issue 19: fixed costs are most of a small install's time).
NOT_FOR_HANDOVER = ("aiohttp", "client.installer", "client.state", "sqlite3", "client.credentials",
                    "client.sharing_settings", "http.client", "email.parser", "ssl")
HANDOVER_PROBE = """
import json, sys
import client.cli as cli
leave = cli._leave
def listed():
    print(json.dumps(sorted(m for m in %r if m in sys.modules)), file=sys.stderr)
    leave()
cli._leave = listed
cli.main(sys.argv[1:])
""" % (NOT_FOR_HANDOVER,)


def test_the_daemon_streams_the_manifest_step_then_the_bar_then_every_byte(
    server: Server, admin: Person, friend: Person, tmp_path: Path
) -> None:
    rng = random.Random(20)
    shared, other = rng.randbytes(700_000), rng.randbytes(500_000)
    build = tmp_path / "build"
    (build / "data").mkdir(parents=True)
    for name, data in (("data/a.pak", shared), ("data/b.pak", other), ("data/copy-of-a.pak", shared)):
        (build / name).write_bytes(data)
    admin.run("mistpipe", "new-game", GAME, "--title", "Progress")
    admin.json("mistpipe", "push", GAME, str(build), "--version", "1")
    daemon = Daemon.start(friend)
    try:
        body = {"op": "install", "game": GAME, "dir": str(tmp_path / "installed"), "version": "1", "yes": True}
        items: list[dict[str, Any]] = list(post_lines(f"{daemon.url}/api/run", daemon.token, body))
        again = friend.run(sys.executable, "-c", HANDOVER_PROBE, "install", GAME, "--dir", str(tmp_path / "installed"),
                           "--version", "1", "--json")
    finally:
        daemon.stop()
    assert json.loads(again.stdout)["change"] == "current"  # handed to the daemon, printed whole, exit 0
    assert json.loads(again.stderr.strip().splitlines()[-1]) == [], f"the hand-over imported {again.stderr}"
    said = [i["say"] for i in items if "say" in i]
    fetching = next(n for n, s in enumerate(said) if "fetching and checking the signed manifest" in s)
    checked = next(n for n, s in enumerate(said) if "manifest checked" in s)
    assert fetching < checked < next(n for n, s in enumerate(said) if "download about" in s)
    kinds = [k for i in items for k in ("bar", "advance") if k in i]
    assert kinds[0] == "bar" and "advance" in kinds  # the total is shown before the first byte is counted
    total = sum(int(i["total"]) for i in items if "bar" in i)
    assert total == 2 * len(shared) + len(other)
    assert sum(int(i["bytes"]) for i in items if "advance" in i) == total  # the copy's bytes count too
    assert "result" in items[-1]
    assert (tmp_path / "installed" / "data" / "copy-of-a.pak").read_bytes() == shared


def test_an_install_killed_in_its_first_window_resumes_window_by_window_to_the_exact_build(
    admin: Person, friend: Person, tmp_path: Path
) -> None:
    build = make_tree(tmp_path / "build", seed=21, small_files=30, large=(3 * MB, 2 * MB))
    admin.run("mistpipe", "new-game", "windows", "--title", "Windows")
    admin.json("mistpipe", "push", "windows", str(build), "--version", "1")
    target = tmp_path / "windows"
    small = {"MIST_INSTALL_WINDOW": "1"}  # 1 MB: each large file is a window of its own
    args = ("install", "windows", "--dir", str(target), "--version", "1", "--json")
    killed = friend.run("mist", *args, check=False, env={**small, "MIST_CRASH_AT": "fetched-batch"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    files = [p for p in build.rglob("*") if p.is_file()]
    staged = list((target / ".mist" / "staging").iterdir())
    assert 0 < len(staged) < len(files)  # killed in the first window: the later windows' files were not made yet
    resumed = friend.json("mist", *args[:-1], env=small)
    assert_same_tree(build, target)
    full = sum(p.stat().st_size for p in files)
    assert resumed["bytes_reused"] > 0 and resumed["bytes_downloaded"] + resumed["bytes_reused"] <= full + 64 * 4096


def test_a_daemon_killed_outright_leaves_an_address_that_neither_stops_installs_nor_a_new_daemon(
    admin: Person, friend: Person, tmp_path: Path
) -> None:
    build = make_tree(tmp_path / "build", seed=22, small_files=5, large=(1 * MB,))
    admin.run("mistpipe", "new-game", "stale", "--title", "Stale")
    admin.json("mistpipe", "push", "stale", str(build), "--version", "1")
    daemon = Daemon.start(friend)
    daemon.process.send_signal(signal.SIGKILL)  # a crash or a power cut: no chance to remove daemon.json
    daemon.process.wait()
    address = friend.home / "daemon.json"
    left = json.loads(address.read_text())
    left["pid"] = os.getpid()  # after a restart, its pid may be any other program's
    address.write_text(json.dumps(left))
    outcome = friend.json("mist", "install", "stale", "--dir", str(tmp_path / "stale"))
    assert outcome["change"] == "install"  # by this command itself, not "lost the mist daemon"
    assert_same_tree(build, tmp_path / "stale")
    assert friend.json("mist", "status")["running"] is False
    again = Daemon.start(friend)  # not "a mist daemon already runs"
    try:
        assert json.loads(address.read_text())["pid"] == again.process.pid
    finally:
        again.stop()
