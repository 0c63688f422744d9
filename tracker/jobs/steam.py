"""The Steam store's `appdetails`: fetch a game's short description and header image (urllib lives only here).

Parsing is pure and strict; fetching maps every network failure to SteamError,
so the catalog job can record what went wrong and leave the catalog as it was.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass

from tracker.errors import TrackerError

DEFAULT_URL = "https://store.steampowered.com"
DEFAULT_TIMEOUT = 10.0


class SteamError(TrackerError):
    """The Steam store did not give usable details; the catalog keeps what it had."""


@dataclass(frozen=True)
class SteamDetails:
    short_description: str
    header_image: str


def parse_appdetails(app_id: int, body: bytes) -> SteamDetails:
    """Read `{"<id>": {"success": true, "data": {...}}}`, the store's real answer format."""
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise SteamError(f"Steam answered app {app_id} with something that is not JSON") from exc
    entry = obj.get(str(app_id)) if isinstance(obj, dict) else None
    if not isinstance(entry, dict) or "success" not in entry:
        raise SteamError(f"Steam's answer for app {app_id} is not in the appdetails format")
    if entry["success"] is not True:
        raise SteamError(f"Steam has no store page for app {app_id} (success: false); check the app id")
    data = entry.get("data")
    if not isinstance(data, dict):
        raise SteamError(f"Steam's answer for app {app_id} has no data")
    description, image = data.get("short_description", ""), data.get("header_image", "")
    if not isinstance(description, str) or not isinstance(image, str):
        raise SteamError(f"Steam's answer for app {app_id} has malformed fields")
    if image and not image.startswith(("https://", "http://")):
        raise SteamError(f"Steam's header image for app {app_id} is not a web address")
    return SteamDetails(description.strip()[:2000], image[:500])


def fetch_appdetails(app_id: int, base_url: str = DEFAULT_URL, timeout: float = DEFAULT_TIMEOUT) -> SteamDetails:
    """The store page's details (MIST_STEAM_URL and MIST_STEAM_TIMEOUT reach here through the worker's settings)."""
    base, wait = base_url.rstrip("/"), timeout
    url = f"{base}/api/appdetails?appids={app_id}&filters=basic"
    try:
        with urllib.request.urlopen(url, timeout=wait) as response:
            body = response.read(4 * 1024 * 1024)
    except (urllib.error.URLError, socket.timeout, TimeoutError, OSError) as exc:
        raise SteamError(f"could not reach the Steam store for app {app_id} ({exc}); the job will run again") from exc
    return parse_appdetails(app_id, body)
