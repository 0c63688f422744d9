"""One JSON GET over the standard library, for the commands that only read (`mist ls`, `mist status`).

aiohttp alone takes 0.13 s to import, twice what such a command needs in all.
This path answers only the plain case (a saved token still valid, a 200 with
JSON); anything else returns None and the caller asks again through
`client.api`, which refreshes tokens, follows key hand-overs and words every
error. So there is one place that knows how the tracker fails, and the common
case costs no aiohttp.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlsplit

REFRESH_MARGIN = 60  # as client.api: a token this close to its end is refreshed there, not used here
TIMEOUT = 10.0


def get_json(url: str, token: str, scheme: str = "Bearer", user_agent: str = "mist (Mist)") -> Any | None:
    """GET `url` with the token; the JSON answer, or None when the caller should take the full path."""
    import http.client  # here, not at import: `mist --help` needs none of it

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = kind(parts.hostname, parts.port, timeout=TIMEOUT)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("GET", path, headers={"Authorization": f"{scheme} {token}", "User-Agent": user_agent,
                                                 "Accept": "application/json"})
        response = connection.getresponse()
        if response.status != 200:
            return None
        return json.loads(response.read())
    except (OSError, http.client.HTTPException, ValueError, RecursionError):
        return None
    finally:
        connection.close()


def tracker_get(creds: Any, path: str, tool: str) -> Any | None:
    """GET a tracker path with a saved session (`client.credentials.Credentials`), or None (see `get_json`)."""
    if creds.access_expires - REFRESH_MARGIN < time.time():
        return None
    return get_json(f"{creds.url}{path}", creds.access_token, user_agent=f"{tool} (Mist)")
