"""The app's own settings (MIST_HOME/app.json): desktop notifications, and starting with the system.

What friends may take from us (caps, windows, friends at once) is not here:
it is the sharing settings file `mist share` writes (client/sharing_settings.py),
and the games folder is the one `mist settings` sets (client/games_folder.py);
the settings page edits both. Parsing is strict like that file's: an
unknown key or a wrong type is refused with what to write instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from shared.durable import write_atomic
from client.sharing_settings import SettingsError

PREFERENCES_FILE = "app.json"


@dataclass(frozen=True)
class Preferences:
    notifications: bool = True
    autostart: bool = False

    def with_changes(self, **changes: object) -> "Preferences":
        return replace(self, **changes)  # type: ignore[arg-type]  # callers pass checked values of the fields' types


def load(home: Path) -> Preferences:
    path = home / PREFERENCES_FILE
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Preferences()
    except ValueError as exc:
        raise SettingsError(f"the app settings in {path} are unreadable ({exc}); fix the file or delete it") from exc
    if not isinstance(body, dict) or set(body) - {"notifications", "autostart"}:
        raise SettingsError(
            f"the app settings in {path} must be an object with notifications and autostart; fix the file or delete it"
        )
    prefs = Preferences(**body)
    check(prefs)
    return prefs


def check(prefs: Preferences) -> None:
    for name in ("notifications", "autostart"):
        if not isinstance(getattr(prefs, name), bool):
            raise SettingsError(f"{name} must be true or false")


def save(home: Path, prefs: Preferences) -> None:
    check(prefs)
    body = {"notifications": prefs.notifications, "autostart": prefs.autostart}
    write_atomic(home / PREFERENCES_FILE, (json.dumps(body, indent=2) + "\n").encode())
