"""The app's own settings (MIST_HOME/app.json): the default install folder, notifications, start with the system.

What friends may take from us (caps, windows, friends at once) is not here:
it is the sharing settings file `mist share` writes (client/sharing_settings.py),
which the settings page edits too. Parsing is strict like that file's: an
unknown key or a wrong type is refused with what to write instead.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

from client.journal import write_atomic
from client.sharing_settings import SettingsError

PREFERENCES_FILE = "app.json"


@dataclass(frozen=True)
class Preferences:
    default_dir: str = ""  # empty: default_games_folder()
    notifications: bool = True
    autostart: bool = False

    def with_changes(self, **changes: object) -> "Preferences":
        return replace(self, **changes)  # type: ignore[arg-type]


def default_games_folder(home: Path) -> Path:
    """Where games go unless the friend chose: a `games` folder beside Mist's own data (MIST_HOME's parent
    folder when MIST_HOME is set, so test clients stay apart)."""
    if os.environ.get("MIST_HOME"):
        return home / "games"
    import platformdirs

    return Path(platformdirs.user_data_dir("mist", appauthor=False)) / "games"


def install_folder(home: Path, prefs: Preferences, game: str) -> Path:
    base = Path(prefs.default_dir).expanduser() if prefs.default_dir else default_games_folder(home)
    return base / game


def load(home: Path) -> Preferences:
    path = home / PREFERENCES_FILE
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Preferences()
    except ValueError as exc:
        raise SettingsError(f"the app settings in {path} are unreadable ({exc}); fix the file or delete it") from exc
    if not isinstance(body, dict) or set(body) - {"default_dir", "notifications", "autostart"}:
        raise SettingsError(f"the app settings in {path} must be an object with default_dir, notifications and "
                            "autostart; fix the file or delete it")
    prefs = Preferences(**body)
    check(prefs)
    return prefs


def check(prefs: Preferences) -> None:
    if not isinstance(prefs.default_dir, str):
        raise SettingsError("default_dir must be a folder path (text)")
    if prefs.default_dir and not Path(prefs.default_dir).expanduser().is_absolute():
        raise SettingsError(f"the default install folder must be a full path like /home/you/Games (got "
                            f"{prefs.default_dir!r})")
    for name in ("notifications", "autostart"):
        if not isinstance(getattr(prefs, name), bool):
            raise SettingsError(f"{name} must be true or false")


def save(home: Path, prefs: Preferences) -> None:
    check(prefs)
    body = {"default_dir": prefs.default_dir, "notifications": prefs.notifications, "autostart": prefs.autostart}
    write_atomic(home / PREFERENCES_FILE, (json.dumps(body, indent=2) + "\n").encode())
