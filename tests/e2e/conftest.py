"""A real mist-server on a loopback port, and real `mist` / `mistpipe` processes with their own MIST_HOMEs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests import backends
from tests.waiting import wait_until

BIN = Path(sys.executable).parent
ADMIN_PASSWORD = "admin-secret-1"
FRIEND_PASSWORD = "friend-secret-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    data: Path
    process: subprocess.Popen
    log: list[str] = field(default_factory=list)  # its stderr after the welcome, read as it comes

    def wait_for_log(self, words: str, timeout: float = 30.0) -> str:
        """The first line of the server's log (its worker's included) that holds `words`, once it has come."""
        return wait_until(lambda: next((line for line in list(self.log) if words in line), None),
                          lambda: f"the server to log {words!r}; it logged:\n" + "".join(self.log[-20:]), timeout, 0.05)

    def store_size(self, sha256: str) -> int:
        return (self.data / "store" / sha256[:2] / sha256[2:4] / sha256).stat().st_size

    def store_path(self, sha256: str) -> Path:
        return self.data / "store" / sha256[:2] / sha256[2:4] / sha256

    def sql(self, statement: str, **params: object) -> list[tuple]:
        """Run one SQL statement on the server's database (SQLite or PostgreSQL), committed; its rows."""
        engine = create_engine(backends.database_url(self.data))
        try:
            with engine.begin() as connection:
                result = connection.execute(text(statement), params)
                return [tuple(row) for row in result] if result.returns_rows else []
        finally:
            engine.dispose()


def start_server(data: Path, extra_env: dict[str, str] | None = None, port: int | None = None,
                 args: tuple[str, ...] = ()) -> Server:
    """`port` restarts a server where its clients knew it; by default any free one. `args` go to mist-server."""
    port = port or free_port()
    env = {**os.environ, "MIST_ADMIN_PASSWORD": ADMIN_PASSWORD, **backends.backend_env(data), **(extra_env or {})}
    process = subprocess.Popen(
        [BIN / "mist-server", "--data", str(data), "--port", str(port), *args],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, text=True,
        umask=0o022,  # as a person's shell has it: the server must make its data private itself
    )
    assert process.stderr is not None
    seen = []
    for line in process.stderr:  # wait for the server to say it is ready, not for a fixed time
        seen.append(line)
        if line.startswith("Mist is running at"):
            break
    else:
        raise AssertionError("mist-server exited before it was ready:\n" + "".join(seen))
    server = Server(f"http://127.0.0.1:{port}", data, process)
    # Keep reading: a full pipe would stop the server (and its worker, whose log it relays) mid-write.
    threading.Thread(target=_keep_reading, args=(process, server.log), daemon=True).start()
    return server


def _keep_reading(process: subprocess.Popen, into: list[str]) -> None:
    assert process.stderr is not None
    for line in process.stderr:
        into.append(line)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    srv = start_server(tmp_path_factory.mktemp("server"))
    yield srv
    srv.process.terminate()
    srv.process.wait(timeout=30)  # it stops its worker first, which may be finishing a job


@dataclass
class Person:
    """One user of one machine: a MIST_HOME, a password, and the two commands."""

    home: Path
    password: str
    bin: Path = BIN  # where `mist` and `mistpipe` come from: this virtualenv, or a friend's fresh one

    def run(self, tool: str, *args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        full_env = {**os.environ, "MIST_HOME": str(self.home), "MIST_PASSWORD": self.password}
        full_env.pop("MIST_CRASH_AT", None)
        full_env.update(env or {})
        result = subprocess.run([self.bin / tool, *args], capture_output=True, text=True, env=full_env, stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise AssertionError(f"{tool} {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def session(self, tool: str = "mist") -> dict:
        """The saved login of `tool` (URL, user, tokens, pinned key)."""
        return json.loads((self.home / f"credentials-{tool}.json").read_text())

    def json(self, tool: str, *args: str, env: dict[str, str] | None = None) -> dict:
        return json.loads(self.run(tool, *args, "--json", env=env).stdout)


@pytest.fixture(scope="module")
def admin(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Person:
    person = Person(tmp_path_factory.mktemp("admin-home"), ADMIN_PASSWORD)
    person.run("mistpipe", "login", server.url, "--user", "admin")
    return person


_friends = 0


@pytest.fixture
def friend(server: Server, admin: Person, tmp_path: Path) -> Person:
    """A new account logged in from a new MIST_HOME."""
    global _friends
    _friends += 1
    name = f"friend{_friends}"
    admin.run("mistpipe", "user", "add", name, env={"MIST_PASSWORD": FRIEND_PASSWORD})
    person = Person(tmp_path / f"{name}-home", FRIEND_PASSWORD)
    person.run("mist", "login", server.url, "--user", name)
    return person
