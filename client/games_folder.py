"""Where a game goes when the friend does not say: a folder per game under the platform's data folder.

`platformdirs` knows each OS's place for an application's data (AppData\\Local
on Windows, Application Support on macOS, XDG_DATA_HOME on Linux), which is
where the client's state already lives (client/home.py), so MIST_HOME moves
both together. A game's slug may be a name Windows refuses as a folder
(`con`, `aux`, `com1`): such a folder gets a `-game` suffix.
"""

from __future__ import annotations

from pathlib import Path

from client.home import mist_home
from shared.paths import refused_by_windows

GAMES = "games"


def folder_name(game: str) -> str:
    """The game's folder name, one every OS accepts (slugs are already lowercase letters, digits, dashes)."""
    return f"{game}-game" if refused_by_windows(game) else game


def default_folder(game: str, home: Path | None = None) -> Path:
    """The folder `mist install GAME` uses without --dir: HOME/games/GAME (HOME: MIST_HOME or the data folder)."""
    return (home or mist_home()) / GAMES / folder_name(game)
