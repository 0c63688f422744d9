"""Where a running daemon listens: the address file in MIST_HOME (daemon.json, mode 0600: it holds the token).

Apart from client/daemon.py so that every `mist` command can look for a
daemon to hand its work to without importing the daemon's server.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from client import process

DAEMON_FILE = "daemon.json"


@dataclass(frozen=True)
class Address:
    """Where a running daemon listens, and the token its local API wants."""

    url: str
    token: str
    pid: int


def read_address(home: Path) -> Address | None:
    """The running daemon of this MIST_HOME, or None: no file, its process is gone, or nothing listens at its
    address. A daemon killed outright (a crash, a power cut) leaves its file behind, and its process id may be
    another program's by then (after a restart, soon): that file alone must not turn every `mist install` into
    "lost the mist daemon", nor keep `mist daemon` from starting again."""
    try:
        obj = json.loads((home / DAEMON_FILE).read_text())
        address = Address(str(obj["url"]), str(obj["token"]), int(obj["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return address if process.alive(address.pid) and _listening(address.url) else None


def _listening(url: str) -> bool:
    """Whether something accepts connections at the address (the daemon writes its file once it listens)."""
    import socket
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=LISTEN_TIMEOUT):
            return True
    except (OSError, ValueError):  # refused, or an address that is no address
        return False


LISTEN_TIMEOUT = 2.0  # loopback answers at once; Windows retries a refused loopback connect for about a second


def write_address(home: Path, address: Address) -> None:
    from shared.durable import write_atomic  # here: every `mist` command reads the address, only the daemon writes it

    write_atomic(home / DAEMON_FILE, json.dumps(address.__dict__).encode(), mode=0o600)  # the token is a secret
