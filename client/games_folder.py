"""Where games go when the friend does not say: a folder of their own, settable (`mist settings --games-folder`).

Default: `Games/Mist` in the home folder on every platform, beside where other launchers put theirs
(Heroic's ~/Games/Heroic); a game goes into a folder named after it there.
"""

from __future__ import annotations

import json
from pathlib import Path

from client.errors import ClientError
from shared.durable import write_atomic
from shared.paths import refused_by_windows

SETTINGS_FILE = "library.json"  # in MIST_HOME


def default_games_folder() -> Path:
    return Path.home() / "Games" / "Mist"


def games_folder(home: Path) -> Path:
    """The folder set for this MIST_HOME, else the default."""
    try:
        chosen = json.loads((home / SETTINGS_FILE).read_text()).get("games_folder")
    except FileNotFoundError:
        return default_games_folder()
    except (OSError, ValueError, AttributeError) as exc:
        raise ClientError(f"{home / SETTINGS_FILE} is unreadable ({exc}); fix or delete it") from exc
    return Path(chosen) if isinstance(chosen, str) and chosen else default_games_folder()


def set_games_folder(home: Path, folder: Path) -> Path:
    """Remember `folder` (made absolute) as where new installs go."""
    chosen = folder.expanduser().resolve()
    if chosen.exists() and not chosen.is_dir():
        raise ClientError(f"{chosen} is a file; choose a folder for your games")
    write_atomic(home / SETTINGS_FILE, (json.dumps({"games_folder": str(chosen)}, indent=2) + "\n").encode())
    return chosen


def folder_name(game: str) -> str:
    """The game's folder name, one every OS accepts: a slug Windows refuses as a folder (`con`, `nul`, `com1`)
    gets a `-game` suffix (slugs are otherwise lowercase letters, digits and dashes, safe everywhere)."""
    return f"{game}-game" if refused_by_windows(game) else game
