"""What the admin site tells browsers and checks of them: cookies, CSRF tokens, the origin of a form, headers.

Every page is sent with a Content-Security-Policy that allows no inline script or style, X-Frame-Options
DENY and no caching (pages show names, addresses and invitation links). A form that changes something must
carry the CSRF token of its session and, when the browser says where it came from (Origin, else Referer),
come from this site; SameSite=Strict cookies already keep other sites' requests from carrying the session.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from aiohttp import web

from tracker.errors import Forbidden

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
STATIC_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "public, max-age=86400"}


def came_over_https(request: web.Request) -> bool:
    """HTTPS to us, or to the reverse proxy in front (deploy/nginx/mist.conf sends X-Forwarded-Proto).

    Trusting the header here is safe whatever sent it: it only adds the Secure flag to a cookie.
    """
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return request.scheme == "https" or forwarded == "https"


def set_cookie(response: web.StreamResponse, request: web.Request, name: str, value: str, path: str, max_age: int | None) -> None:
    response.set_cookie(
        name, value, path=path, max_age=max_age, httponly=True, samesite="Strict", secure=came_over_https(request)
    )


def new_token() -> str:
    return secrets.token_urlsafe(32)


def same_token(a: str, b: str) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(a.encode(), b.encode())


def check_origin(request: web.Request) -> None:
    """Refuse a form sent from another site: its Origin (or Referer) must name this host."""
    source = request.headers.get("Origin") or request.headers.get("Referer") or ""
    if not source:
        return  # the CSRF token decides alone
    if source == "null" or urlsplit(source).netloc.lower() != request.host.lower():
        raise Forbidden(
            "this form was sent from another site, so nothing was changed; open the admin site itself and send it from there"
        )


def check_csrf(expected: str, sent: str) -> None:
    if not same_token(expected, sent):
        raise Forbidden(
            "this form has no valid security token (it may be from an old page), so nothing was "
            "changed; reload the page and send it again"
        )
