"""The saved login of `mist` or `mistpipe`: tracker URL, tokens and the pinned tracker key.

Kept as a JSON file only the user can read (mode 0600) in MIST_HOME.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from client.errors import NotLoggedIn


@dataclass
class Credentials:
    url: str
    user: str
    scope: str
    access_token: str
    access_expires: float
    refresh_token: str
    public_key: str

    def __repr__(self) -> str:
        return f"Credentials(url={self.url!r}, user={self.user!r}, scope={self.scope!r})"


def path_for(home: Path, tool: str) -> Path:
    return home / f"credentials-{tool}.json"


def load(home: Path, tool: str) -> Credentials:
    path = path_for(home, tool)
    try:
        return Credentials(**json.loads(path.read_text()))
    except FileNotFoundError:
        raise NotLoggedIn(f"not logged in; run `{tool} login URL --user NAME` first") from None
    except (ValueError, TypeError) as exc:
        raise NotLoggedIn(f"saved login at {path} is unreadable; run `{tool} login` again") from exc


def save(home: Path, tool: str, creds: Credentials) -> Path:
    path = path_for(home, tool)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(asdict(creds), f)
    os.replace(tmp, path)
    return path


def forget(home: Path, tool: str) -> bool:
    path = path_for(home, tool)
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed
