"""What `mist` and `mistpipe` take from the environment, read once when the command line starts.

The command line (and so `mist daemon`) reads `ClientSettings.from_env()` before any command runs and
hands it to the commands through click's context; below them nothing reads the environment. The process-wide
ones (a crash point, loopback ICE candidates, the wait for friends' links, an install's download window) are
set once by `arm()`, at that start.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from client import crashpoints
from client.home import mist_home
from shared.environment import log_format, number
from shared.errors import SettingsError

HOME_ENV = "MIST_HOME"  # this client's state (default: the platform's user data folder)
PASSWORD_ENV = "MIST_PASSWORD"  # a password for `login` and the admin's account commands, instead of a prompt
LOOPBACK_ENV = "MIST_PEER_LOOPBACK"  # "1": offer 127.0.0.1 to friends (several clients on one machine)
GRACE_ENV = "MIST_PEER_GRACE"  # seconds the seeder is held back at most while friends' links come up
WINDOW_ENV = "MIST_INSTALL_WINDOW"  # MB of files an install fetches together (client/assembly.py WINDOW_BYTES)
CRASH_ENV = "MIST_CRASH_AT"  # tests only: SIGKILL this process at the named point (client/crashpoints.py)


@dataclass(frozen=True)
class ClientSettings:
    """A client's settings; the defaults are those of an unset environment."""

    home_override: Path | None = None
    password: str = ""
    log_format: str = ""  # `json` or `text`; "" for text (a person reads the daemon's terminal or its log file)
    peer_loopback: bool = False
    crash_at: str = ""
    peer_grace: float | None = None  # None: client/swarm.py's CONNECT_GRACE
    install_window: int | None = None  # bytes; None: client/assembly.py's WINDOW_BYTES

    def __repr__(self) -> str:  # the password is a secret: say only whether there is one
        return (
            f"ClientSettings(home_override={self.home_override!r}, password={'set' if self.password else ''!r}, "
            f"log_format={self.log_format!r}, peer_loopback={self.peer_loopback}, crash_at={self.crash_at!r}, "
            f"peer_grace={self.peer_grace!r}, install_window={self.install_window!r})"
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> ClientSettings:
        """A wrong value raises SettingsError naming its variable (the command does not run)."""
        loopback = env.get(LOOPBACK_ENV, "").strip()
        if loopback not in ("", "0", "1"):
            raise SettingsError(f"{LOOPBACK_ENV} must be 1 (offer 127.0.0.1 to friends on this machine) or 0 (got {loopback!r})")
        crash_at = env.get(CRASH_ENV, "").strip()
        if crash_at and crash_at not in crashpoints.POINTS:
            raise SettingsError(f"{CRASH_ENV} must be one of {', '.join(crashpoints.POINTS)} (got {crash_at!r})")
        home = env.get(HOME_ENV, "")
        window = env.get(WINDOW_ENV, "").strip()
        if window and not (window.isdigit() and 1 <= int(window) <= 1 << 20):
            raise SettingsError(
                f"{WINDOW_ENV} must be a whole number of MB from 1 to 1048576, the files an install fetches together "
                f"(got {window!r})"
            )
        return cls(
            peer_grace=_grace(env),
            home_override=Path(home) if home else None,
            password=env.get(PASSWORD_ENV, ""),
            log_format=log_format(env),
            peer_loopback=loopback == "1",
            crash_at=crash_at,
            install_window=int(window) * 1_000_000 if window else None,
        )

    def home(self) -> Path:
        """The folder this client keeps its state in, made if missing."""
        return mist_home(self.home_override)

    def arm(self) -> None:
        """Set what these settings name for the whole process: the test hooks (a crash point, loopback candidates:
        never set for a friend), the wait for friends' links and an install's download window."""
        crashpoints.arm(self.crash_at)
        if self.peer_loopback:
            from client import peerlink

            peerlink.offer_loopback()
        if self.peer_grace is not None:
            from client import swarm  # only then: its imports cost every command's start

            swarm.CONNECT_GRACE = self.peer_grace
        if self.install_window is not None:
            from client import assembly

            assembly.WINDOW_BYTES = self.install_window


def _grace(env: Mapping[str, str]) -> float | None:
    """MIST_PEER_GRACE, or None when unset (client/swarm.py's default then stands: not imported at every start)."""
    what = "a number of seconds from 0 to 3600, the longest wait for friends' links before the seeder sends freely"
    seconds = number(env, GRACE_ENV, -1.0, what, least=0.0, most=3600.0)
    return seconds if seconds >= 0 else None
