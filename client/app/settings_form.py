"""The settings page's data: the sharing settings (the file `mist share` writes), the games folder (`mist
settings`), and the app's own preferences, read together and changed together.

A change is checked whole before anything is written, so a typo in one field
leaves every file as it was, and the message says what to write instead.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

from client import sharing_settings
from client.app import desktop, preferences
from client.app.preferences import Preferences
from client.games_folder import games_folder, set_games_folder
from client.sharing_settings import SETTINGS_FILE, Sharing, SettingsError
from shared.errors import MistError


def preferences_of(home: Path) -> Preferences:
    """The app's preferences; a damaged file counts as the defaults (the settings page can write it anew)."""
    try:
        return preferences.load(home)
    except MistError:
        return Preferences()


def current(home: Path, sharing: Sharing) -> dict[str, Any]:
    prefs = preferences_of(home)
    return {
        "sharing": sharing_settings.to_json(sharing),
        "text": {
            "upload_cap": sharing_settings.format_rate(sharing.upload_cap),
            "download_cap": sharing_settings.format_rate(sharing.download_cap),
            "schedule": "\n".join(window_text(w) for w in sharing.schedule),
        },
        "default_dir": str(games_folder(home)),
        "notifications": prefs.notifications,
        "autostart": prefs.autostart,
        "autostart_supported": desktop.autostart_supported(),
    }


async def apply(home: Path, sharing: Sharing, changes: dict[str, Any]) -> Sharing | None:
    """Check `changes` (form fields or JSON), then save them; the new sharing settings if they changed."""
    sharing_changes: dict[str, Any] = {}
    if "enabled" in changes:
        sharing_changes["enabled"] = flag(changes["enabled"], "sharing")
    for name in ("upload_cap", "download_cap"):
        if name in changes:
            value = changes[name]
            sharing_changes[name] = sharing_settings.parse_rate(value) if isinstance(value, str) else value
    if "max_peers" in changes:
        try:
            sharing_changes["max_peers"] = int(changes["max_peers"])
        except (TypeError, ValueError):
            raise SettingsError(f"friends at once must be a whole number like 8 (got {changes['max_peers']!r})") from None
    if "schedule" in changes:
        lines = changes["schedule"]
        lines = lines.splitlines() if isinstance(lines, str) else list(lines)
        sharing_changes["schedule"] = tuple(sharing_settings.parse_window(line) for line in lines if line.strip())
    fresh: Sharing = dataclasses.replace(sharing, **sharing_changes)  # its own checks run here
    folder = str(changes.get("default_dir", "")).strip()
    new_folder = Path(folder).expanduser() if folder and Path(folder).expanduser() != games_folder(home) else None
    if new_folder is not None and not new_folder.is_absolute():
        raise SettingsError(f"the games folder must be a full path like {games_folder(home)} (got {folder!r})")
    prefs = preferences_of(home)
    pref_changes = {name: flag(changes[name], name) for name in ("notifications", "autostart") if name in changes}
    new_prefs = prefs.with_changes(**pref_changes)
    preferences.check(new_prefs)
    # Everything checked: now write.
    if new_folder is not None:
        await asyncio.to_thread(set_games_folder, home, new_folder)
    if pref_changes:
        if new_prefs.autostart != prefs.autostart:
            await asyncio.to_thread(desktop.set_autostart, new_prefs.autostart)
        await asyncio.to_thread(preferences.save, home, new_prefs)
    if sharing_changes:
        await asyncio.to_thread(sharing_settings.save, home / SETTINGS_FILE, fresh)
        return fresh
    return None


def flag(value: object, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("on", "true", "1", "yes", "off", "false", "0", "no"):
        return value.lower() in ("on", "true", "1", "yes")
    raise SettingsError(f"{name} must be on or off (got {value!r})")


def window_text(w: sharing_settings.Window) -> str:
    """A daily window as the settings page shows it, in the form `parse_window` reads back."""

    def rate(n: int | None) -> str:
        return sharing_settings.format_rate(n).replace(" ", "").removesuffix("/s")

    return f"{w.start:%H:%M}-{w.end:%H:%M} up={rate(w.upload_cap)} down={rate(w.download_cap)}"
