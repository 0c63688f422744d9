"""Who may talk to the daemon's local server, and how a browser gets its session.

The server listens on 127.0.0.1 only, which keeps other machines out but not
web pages in this machine's browser. So every request must name the daemon's
own address in `Host` (a page whose DNS name was rebound to 127.0.0.1 sends its
own name), and any request that carries an `Origin` must come from the app's
own origin, even with a valid token: no other site may drive the API. Then it
needs either the token from MIST_HOME/daemon.json (the `mist` command) or the
session cookie a browser gets by opening a one-time address (`mist app`):
HttpOnly, so no script reads it, and SameSite=Strict, so no other site's page
makes the browser send it. There is no CORS.

The decisions are pure functions; the middleware in client/app/server.py applies them.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

COOKIE = "mist_session"
CODE_LIFETIME = 120.0  # seconds: `mist app` opens the address at once
SESSIONS_KEPT = 64


def allowed_hosts(port: int) -> frozenset[str]:
    return frozenset({f"127.0.0.1:{port}", f"localhost:{port}"})


def refusal(host: str, origin: str | None, fetch_site: str | None, port: int) -> str | None:
    """Why a request must be refused before anything else is looked at, or None.

    `fetch_site` is the browser's Sec-Fetch-Site: a cross-site request is refused even where the browser
    sends no Origin (a plain link or image from another site)."""
    hosts = allowed_hosts(port)
    if host.lower() not in hosts:
        return f"this is Mist's local app; it answers only at http://127.0.0.1:{port} (got Host {host[:100]!r})"
    if origin is not None and origin.lower() not in {f"http://{h}" for h in hosts}:
        return f"requests from other sites are refused (Origin {origin[:100]!r}); open Mist with `mist app`"
    if fetch_site is not None and fetch_site.lower() == "cross-site":
        return "requests from other sites are refused; open Mist with `mist app`"
    return None


@dataclass
class Sessions:
    """One-time codes (each opens one browser session) and the sessions they opened, in memory.

    A restarted daemon forgets them: `mist app` hands out a new address. The clock is injectable for tests.
    """

    clock: Callable[[], float] = time.monotonic
    codes: dict[str, float] = field(default_factory=dict)  # code -> when it stops working
    sessions: dict[str, float] = field(default_factory=dict)  # session id -> when it was opened

    def __repr__(self) -> str:
        return f"Sessions(codes={len(self.codes)}, sessions={len(self.sessions)})"

    def new_code(self) -> str:
        now = self.clock()
        self.codes = {c: t for c, t in self.codes.items() if t > now}
        code = secrets.token_urlsafe(24)
        self.codes[code] = now + CODE_LIFETIME
        return code

    def redeem(self, code: str) -> str | None:
        """A new session for a code that is known and fresh; the code works once."""
        expires = self.codes.pop(code, None)
        if expires is None or expires <= self.clock():
            return None
        session = secrets.token_urlsafe(32)
        self.sessions[session] = self.clock()
        while len(self.sessions) > SESSIONS_KEPT:
            del self.sessions[next(iter(self.sessions))]
        return session

    def valid(self, session: str | None) -> bool:
        return session is not None and session in self.sessions

    def end(self, session: str | None) -> None:
        if session is not None:
            self.sessions.pop(session, None)


def token_matches(header: str | None, token: str) -> bool:
    return header is not None and secrets.compare_digest(header.encode(), f"Bearer {token}".encode())


def cookie_header(session: str) -> str:
    """The Set-Cookie value: the browser keeps it for this session only and sends it only to us, from our pages."""
    return f"{COOKIE}={session}; HttpOnly; SameSite=Strict; Path=/"


SECURITY_HEADERS = {
    # No inline script or style anywhere, so the strictest policy holds.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
