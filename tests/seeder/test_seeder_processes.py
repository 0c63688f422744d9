"""`mist-seeder --processes N`: N processes really serve on one port, and they stop together."""

from __future__ import annotations

import json
import os
import signal
import urllib.request
from pathlib import Path

from shared.signing import Signer
from tests.e2e.conftest import BIN, free_port
from tests.e2e.test_split_services import Service, start

PROCESSES = 3
CONNECTIONS = 300  # each a new connection: the kernel spreads them over the processes by their ports


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def pids_answering(url: str) -> set[int]:
    seen = set()
    for _ in range(CONNECTIONS):
        with urllib.request.urlopen(f"{url}/seeder/healthz", timeout=10) as response:  # a new connection each
            seen.add(json.load(response)["pid"])
        if len(seen) == PROCESSES:
            break
    return seen


def start_seeder(tmp_path: Path) -> tuple[Service, str]:
    port = free_port()
    process = start([BIN / "mist-seeder", "--store", str(tmp_path / "store"), "--public-key",
                     Signer.generate().public_key, "--port", str(port), "--processes", str(PROCESSES)])
    return process, f"http://127.0.0.1:{port}"


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_every_process_serves_and_sigterm_stops_them_all(tmp_path: Path) -> None:
    process, url = start_seeder(tmp_path)
    try:
        pids = pids_answering(url)
        assert len(pids) == PROCESSES
        assert all(parent_of(pid) == process.pid for pid in pids)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        assert all(gone(pid) for pid in pids)  # the parent waits for each before it exits
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_one_process_dying_stops_the_rest_and_says_so(tmp_path: Path) -> None:
    process, url = start_seeder(tmp_path)
    try:
        pids = pids_answering(url)
        victim = pids.pop()
        os.kill(victim, signal.SIGKILL)
        assert process.wait(timeout=20) == 1
        assert all(gone(pid) for pid in pids)
        process.wait_for_line(lambda line: f"server process {victim} exited (killed by SIGKILL); stopping the others" in line)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
