"""The tracker's address as a friend should type it, in one place.

The configured one (MIST_PUBLIC_URL, --public-url: tracker/public_url.py) when the server was told it; until
then the one the request came in on (behind the nginx example, its X-Forwarded-Proto says whether that was
HTTPS). The admin site's invitations and the /get page both use this.
"""

from __future__ import annotations

from aiohttp import web

from tracker.admin.security import came_over_https
from tracker.routes.web import CONTEXT


def public_url(request: web.Request) -> str:
    """The tracker's address for friends, like https://mist.example.org (no trailing slash)."""
    settings = request.config_dict[CONTEXT].settings
    if settings.public_url_configured:
        return settings.public_url
    scheme = "https" if came_over_https(request) else "http"
    return f"{scheme}://{request.host}"
