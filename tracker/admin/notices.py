"""The one-line notices a page shows after a form did its work (POST, then a redirect to the page).

The redirect names a notice by key, with at most one name to fill in; the wording lives here, so no link
can make the site say something it never says.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

from aiohttp import web

TEXT = {
    "game-created": "Created the game {}.",
    "game-saved": "Saved {}.",
    "game-deleted": "Deleted the game {} with its builds; the garbage collector frees their data.",
    "steam-queued": "Fetching the Steam details of {} now; reload in a moment.",
    "build-removed": "Removed build {}; the garbage collector frees what no other build needs.",
    "granted": "Granted {} the game.",
    "revoked": "Took the game away from {}.",
    "user-created": "Created the account {}.",
    "password-set": "Set a new password for {}; its sessions ended.",
    "disabled": "Disabled {}; its sessions ended.",
    "enabled": "Enabled {} again.",
    "admin-on": "{} is an admin now.",
    "admin-off": "{} is no longer an admin.",
    "grants-saved": "Saved the games {} may see.",
    "invited": "Made an invitation for {}: copy the link below.",
    "withdrawn": "Withdrew the invitation for {}.",
    "retried": "Queued the job again as {}.",
    "gc-queued": "The garbage collection runs now (job {}).",
    "scrub-queued": "The scrub runs now (job {}).",
    "notes-saved": "Saved build {}.",
    "signed-out": "Signed out.{}",
}


def see(path: str, key: str, name: str = "") -> web.HTTPSeeOther:
    """Send the browser to `path` with notice `key` about `name`."""
    assert key in TEXT, key
    return web.HTTPSeeOther(f"{path}?{urlencode({'done': key, 'name': name})}")


def notice(query: Mapping[str, str]) -> str:
    template = TEXT.get(query.get("done", ""))
    return template.format(query.get("name", "")[:100]) if template else ""
