"""`mist app`: make sure this user's daemon runs, ask it for a one-time address, and open that address.

The daemon is started in the background when none runs (its output goes to
MIST_HOME/daemon.log), so closing the window leaves friends able to download
from you. The address opens a signed-in session once; the window (or browser)
then holds it as a cookie.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import webbrowser
from pathlib import Path
from typing import IO

from client.api import local_call
from client.app import desktop
from client.daemon_address import Address, read_address
from client.errors import ClientError

DAEMON_LOG = "daemon.log"
START_TIMEOUT = 30.0
POLL = 0.05


class AppError(ClientError):
    """`mist app` could not start the daemon or open the app; the message says what to do."""


def ensure_daemon(home: Path, timeout: float = START_TIMEOUT) -> Address:
    """The running daemon of this MIST_HOME, started now if none runs."""
    address = read_address(home)
    if address is not None:
        return address
    log = open(home / DAEMON_LOG, "ab")
    try:
        process = _start_detached([desktop.mist_command(), "daemon", "--port", "0"], log, {**os.environ, "MIST_HOME": str(home)})
    except OSError as exc:
        raise AppError(
            f"could not start `mist daemon` ({exc.strerror or exc}); start it yourself and run `mist app` again"
        ) from exc
    finally:
        log.close()
    deadline = time.monotonic() + timeout
    while (address := read_address(home)) is None:  # the daemon writes its address once it listens
        if process.poll() is not None:
            raise AppError(f"`mist daemon` stopped at once; its log is {home / DAEMON_LOG}")
        if time.monotonic() > deadline:
            raise AppError(f"`mist daemon` did not start within {timeout:.0f} s; its log is {home / DAEMON_LOG}")
        time.sleep(POLL)
    return address


def _start_detached(argv: list[str], log: IO[bytes], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """The daemon outlives this command (and its terminal): a session (POSIX) or process group (Windows) of its own."""
    if sys.platform == "win32":
        flags = getattr(subprocess, "DETACHED_PROCESS", 0) | getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, creationflags=flags)
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, start_new_session=True)


async def one_time_url(address: Address) -> str:
    answer = await local_call(f"{address.url}/api/app/open-address", address.token, "POST")
    return str(answer["url"])


def open_in_browser(url: str) -> bool:
    return webbrowser.open(url, new=1)
