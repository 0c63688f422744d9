"""HTTP over the standard library, for commands that only read or only hand work to the daemon.

aiohttp alone takes 0.13 s to import, more than `mist ls`, `mist status` or an
install handed to a running daemon need in all. `get_json` answers only the
plain case (a saved token still valid, a 200 with JSON); anything else returns
None and the caller asks again through `client.api`, which refreshes tokens,
follows key hand-overs and words every error. `post_lines` streams the
daemon's answer to `mist install` and `mist update`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
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
        connection.request(
            "GET", path, headers={"Authorization": f"{scheme} {token}", "User-Agent": user_agent, "Accept": "application/json"}
        )
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


def post_lines(url: str, token: str, body: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """POST JSON to the local daemon and yield each JSON line of its answer as it comes (as `api.local_lines`)."""
    import http.client

    from client.errors import ServerRefused, TrackerUnavailable

    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port)  # loopback: no timeout
    lost = f"lost the mist daemon at {url}; `mist status` shows whether it runs"
    try:
        try:
            connection.request(
                "POST",
                parts.path,
                body=json.dumps(body).encode(),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            response = connection.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            raise TrackerUnavailable(f"{lost} ({exc})") from exc
        if response.status >= 400:
            try:
                answer = json.loads(response.read())
                message, detail = answer.get("error") or response.reason, answer.get("detail")
            except (OSError, http.client.HTTPException, ValueError, AttributeError):
                message, detail = f"{response.status} {response.reason}", None
            raise ServerRefused(response.status, str(message), detail)
        while True:
            try:
                line = response.readline()
            except (OSError, http.client.HTTPException) as exc:
                raise TrackerUnavailable(f"{lost} ({exc})") from exc
            if not line:
                return
            if line.strip():
                yield json.loads(line)
    finally:
        connection.close()
