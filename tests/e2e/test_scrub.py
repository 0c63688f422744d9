"""Bit rot in the server's store: the scrub sets the chunk aside, clients are told, one push heals it."""

from __future__ import annotations

import os
import select
import signal
from pathlib import Path

from mistpipe.scan import scan
from tests.e2e.conftest import Person, Server
from tests.e2e.gametree import MB, assert_same_tree, make_tree


def worker_processes(data: Path) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "tracker.cli.mist_worker" in cmdline and str(data) in cmdline:
            found.append(proc.name)
    return found


def test_scrub_finds_rot_and_a_push_heals_it(server: Server, admin: Person, friend: Person, tmp_path) -> None:
    tree = make_tree(tmp_path / "rot", seed=31, small_files=10, large=(2 * MB,))
    admin.run("mistpipe", "new-game", "rot", "--title", "Rot")
    admin.json("mistpipe", "push", "rot", str(tree), "--version", "1")
    assert worker_processes(server.data), "mist-server did not start its worker"
    victim = max(scan(tree, "rot", "1").files, key=lambda f: f.size).chunks[1].sha256
    server.store_path(victim).write_bytes(b"\x28\xb5\x2f\xfd flipped bits")

    report = admin.json("mistpipe", "scrub")
    assert report["done"] is True and victim in report["result"]["corrupt"]

    failed = friend.run("mist", "install", "rot", "--dir", str(tmp_path / "game"), check=False)
    assert failed.returncode != 0 and "push it again" in failed.stderr

    healed = admin.json("mistpipe", "push", "rot", str(tree), "--version", "1")
    assert healed["chunks_uploaded"] == 1
    friend.json("mist", "install", "rot", "--dir", str(tmp_path / "game"))
    assert_same_tree(tree, tmp_path / "game")


def test_a_user_cannot_start_a_scrub(server: Server, friend: Person) -> None:
    from tests.e2e.test_faults import http

    status, body = http("POST", f"{server.url}/api/admin/scrub", headers={
        "Authorization": f"Bearer {friend.session()['access_token']}"})
    assert status == 403 and b"admin" in body


def test_the_worker_does_not_outlive_a_killed_server(tmp_path) -> None:
    from tests.e2e.conftest import start_server

    data = tmp_path / "data"
    server = start_server(data)
    workers = [os.pidfd_open(int(pid)) for pid in worker_processes(data)]
    assert workers
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=10)
    for pidfd in workers:  # a pidfd becomes readable when its process exits: wait for that, not for a time
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        assert poller.poll(20_000), "the worker is still running after its server was killed"
        os.close(pidfd)
