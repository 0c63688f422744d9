"""The data directory is the tracker's alone: it holds password hashes, private games' manifests and chunks, and
the signing key. Every server command makes what it creates readable by its own user only (umask 077: folders
0700, files 0600), whoever starts it and whatever umask they had, and takes the data directory itself to 0700,
which closes what an older Mist made readable inside it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077


def make_private(data: Path) -> None:
    """For this process and those it starts: new files 0600 and folders 0700; `data` (made if missing) 0700."""
    os.umask(PRIVATE_UMASK)
    data.mkdir(parents=True, exist_ok=True)
    if stat.S_IMODE(data.stat().st_mode) != 0o700:
        data.chmod(0o700)
    for item in data.iterdir():  # the database, the queue and the secrets made before this
        if item.is_file() and not item.is_symlink() and stat.S_IMODE(item.stat().st_mode) & 0o077:
            item.chmod(0o600)
