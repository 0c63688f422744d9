"""Where the client keeps its state: MIST_HOME (read at start, client/settings.py), or the platform's user
data folder."""

from __future__ import annotations

from pathlib import Path


def mist_home(override: Path | None = None) -> Path:
    """`override` (MIST_HOME) lets several independent clients share one machine; made if missing."""
    if override is not None:
        home = override
    else:
        import platformdirs

        home = Path(platformdirs.user_data_dir("mist", appauthor=False))
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    return home
