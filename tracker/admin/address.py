"""The tracker's address as a friend should type it, in one place.

Until the server is told its public address, it is the one the request came in on (behind the nginx
example, its X-Forwarded-Proto says whether that was HTTPS).
"""

from __future__ import annotations

from aiohttp import web

from tracker.admin.security import came_over_https


def public_url(request: web.Request) -> str:
    """The tracker's address for friends, like https://mist.example.org (no trailing slash)."""
    scheme = "https" if came_over_https(request) else "http"
    return f"{scheme}://{request.host}"
