"""Finding the running daemon (client/daemon_address.py): its file is believed only while its process lives and
something listens at its address."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from client.daemon_address import DAEMON_FILE, Address, read_address, write_address


def _write(home: Path, port: int, pid: int) -> Address:
    address = Address(f"http://127.0.0.1:{port}", "token", pid)
    write_address(home, address)
    return address


def test_a_daemon_that_lives_and_listens_is_found(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        address = _write(tmp_path, listener.getsockname()[1], os.getpid())
        assert read_address(tmp_path) == address


def test_an_address_nothing_listens_at_is_no_daemon_even_when_its_pid_is_in_use(tmp_path: Path) -> None:
    # A daemon killed outright leaves its file; after a restart its pid may be any other program's (here: ours).
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
    _write(tmp_path, port, os.getpid())
    assert read_address(tmp_path) is None


def test_an_address_whose_process_ended_is_no_daemon(tmp_path: Path) -> None:
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        _write(tmp_path, listener.getsockname()[1], int(ended.stdout))
        assert read_address(tmp_path) is None


def test_no_file_or_a_broken_one_is_no_daemon(tmp_path: Path) -> None:
    assert read_address(tmp_path) is None
    for broken in ("{", "[]", json.dumps({"url": "http://127.0.0.1:1", "token": "t"}),
                   json.dumps({"url": "not a url", "token": "t", "pid": os.getpid()})):
        (tmp_path / DAEMON_FILE).write_text(broken)
        assert read_address(tmp_path) is None
