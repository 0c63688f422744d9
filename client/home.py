"""Where the client keeps its state: MIST_HOME, or the platform's user data folder."""

from __future__ import annotations

import os
from pathlib import Path


def mist_home() -> Path:
    """MIST_HOME overrides the default so several independent clients can share one machine."""
    override = os.environ.get("MIST_HOME")
    if override:
        home = Path(override)
    else:
        import platformdirs

        home = Path(platformdirs.user_data_dir("mist", appauthor=False))
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    return home
