"""Tickets: small signed statements that let the seeder and peers serve content offline.

"user U may read build B until T" or "admin U may upload chunks until T". The
seeder checks a ticket with the tracker's public key alone, with no database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from shared.errors import SignatureError, TicketError, TicketSignatureError
from shared.manifest import canonical_json
from shared.signing import Signer, b64d, b64e, verify

READ = "read"
UPLOAD = "upload"
SCOPES = (READ, UPLOAD)


@dataclass(frozen=True)
class Ticket:
    """What a ticket grants. `build` is the manifest digest for read tickets, empty for upload."""

    subject: str
    scope: str
    build: str
    expires: int
    session: str = ""  # opaque id of the login session it was issued under; refused once the admin ends it

    def encode(self, signer: Signer) -> str:
        claims: dict[str, object] = {"sub": self.subject, "scope": self.scope, "build": self.build, "exp": self.expires}
        if self.session:
            claims["sid"] = self.session
        payload = canonical_json(claims)
        return f"{b64e(payload)}.{signer.sign(payload)}"


def decode(token: str, public_key: str, now: float) -> Ticket:
    """Verify a ticket's signature and expiry; raise TicketError saying what is wrong."""
    if not isinstance(token, str) or token.count(".") != 1:
        raise TicketError("ticket is malformed; ask the tracker for a new one")
    payload_text, signature = token.split(".")
    try:
        payload = b64d(payload_text)
    except SignatureError as exc:
        raise TicketError("ticket payload is malformed; ask the tracker for a new one") from exc
    try:
        verify(public_key, payload, signature)
        obj = json.loads(payload)
    except SignatureError as exc:
        raise TicketSignatureError("ticket signature is invalid; it was not issued by this tracker") from exc
    except (ValueError, RecursionError) as exc:  # bad UTF-8 or JSON, a number too long, nesting too deep
        raise TicketError("ticket payload is malformed; ask the tracker for a new one") from exc
    if not isinstance(obj, dict) or set(obj) - {"sid"} != {"sub", "scope", "build", "exp"}:
        raise TicketError("ticket payload is malformed; ask the tracker for a new one")
    if type(obj["exp"]) is not int or not isinstance(obj.get("sid", ""), str):
        raise TicketError("ticket payload is malformed; ask the tracker for a new one")
    ticket = Ticket(str(obj["sub"]), str(obj["scope"]), str(obj["build"]), obj["exp"], obj.get("sid", ""))
    if ticket.scope not in SCOPES:
        raise TicketError(f"ticket scope {ticket.scope!r} is unknown")
    check_expiry(ticket, now)
    return ticket


def check_expiry(ticket: Ticket, now: float) -> None:
    """Raise TicketError if the ticket has expired (a ticket decoded once is checked again on each use)."""
    if ticket.expires <= now:
        raise TicketError("ticket has expired; ask the tracker for a new one")


def require(ticket: Ticket, scope: str, build: str = "") -> None:
    """Raise TicketError unless the ticket grants `scope` (on `build`, for reads)."""
    if ticket.scope != scope:
        raise TicketError(f"ticket grants {ticket.scope!r}, this needs {scope!r}")
    if scope == READ and build and ticket.build != build:
        raise TicketError("ticket is for another build")
