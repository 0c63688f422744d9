"""Ending an account's sessions at once: a generation per account, checked on every request from a cache.

Access tokens and tickets are checked without the database, which is what
makes them cheap, and is also why, alone, they outlive a disabled account or
a changed password. So each account has a generation, raised whenever its
sessions must end (disabled, a new password, admin rights changed). An
access token names the generation it was issued under, and a request whose
token names an older one is refused. The generations live in a small cache
that a change on this tracker clears at once, and that otherwise trusts the
database for a few seconds at most.

Tickets reach the seeder and friends, who must not learn account names they
do not need; a ticket names its session by an opaque id (an HMAC of the
account and generation). The ids of sessions ended within a ticket's
lifetime are what the tracker publishes (`GET /api/revoked-sessions`), and
what the seeder and friends' daemons refuse.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from tracker.db import queries
from tracker.db.engine import Database
from tracker.errors import DatabaseUnavailable, Forbidden, Unauthorized

log = logging.getLogger("mist.tracker")
CACHE_SECONDS = 5.0  # another tracker process's change (there is none in the embedded default) shows within this
REVOKED_KEPT = 2 * 3600  # ended sessions listed this long: longer than any ticket lives


@dataclass(frozen=True)
class Account:
    """What a request's session is checked against."""

    name: str
    generation: int
    disabled: bool
    is_admin: bool


def session_id(secret: bytes, user: str, generation: int) -> str:
    """The opaque id tickets carry for one generation of one account's sessions."""
    return hmac.new(secret, f"session:{user}:{generation}".encode(), hashlib.sha256).hexdigest()[:32]


def disabled_error(user: str) -> Forbidden:
    return Forbidden(f"the account {user!r} is disabled; ask the admin to enable it again", {"disabled": True})


@dataclass
class Sessions:
    """Each account's current generation, cached; and the ids of the sessions that ended lately."""

    db: Database
    secret: bytes
    clock: Callable[[], float] = time.time
    _cached: dict[str, tuple[float, Account | None]] = field(default_factory=dict)
    _ended: tuple[float, frozenset[str]] = (float("-inf"), frozenset())

    def __repr__(self) -> str:
        return f"Sessions(cached={len(self._cached)})"

    async def account(self, name: str) -> Account | None:
        """The account as the database said at most CACHE_SECONDS ago (None: there is no such account)."""
        now = self.clock()
        hit = self._cached.get(name)
        if hit is not None and now - hit[0] < CACHE_SECONDS:
            return hit[1]
        row = await self.db.run(lambda s: queries.get_user(s, name))
        account = Account(row.name, row.generation, row.disabled, row.is_admin) if row else None
        if len(self._cached) > 10_000:
            self._cached.clear()  # accounts number in the tens; this only bounds a flood of made-up names
        self._cached[name] = (now, account)
        return account

    def changed(self, name: str) -> None:
        """The account's generation or state changed here: the next request reads it again."""
        self._cached.pop(name, None)
        self._ended = (float("-inf"), frozenset())

    async def ended(self, session: str) -> bool:
        """Whether a ticket's session id belongs to a session that was ended (the embedded seeder asks this)."""
        read_at, ended = self._ended
        if self.clock() - read_at >= CACHE_SECONDS:
            try:
                ended = frozenset(await self.revoked())
            except DatabaseUnavailable as exc:  # an outage only: a bad statement is a bug, and says so
                # The database is away (a restart): the last list stays in force and is asked for again in
                # CACHE_SECONDS, as a standalone seeder keeps its copy while the tracker is away. Pushed chunks
                # keep arriving; the commit then says the database is unavailable.
                log.warning("the ended sessions could not be read again, the last list stays in force: %s", exc)
            self._ended = (self.clock(), ended)
        return session in ended

    def check(self, account: Account | None, user: str, generation: int) -> None:
        """Refuse a token of an account that is gone or disabled, or of a generation that ended."""
        if account is None:
            raise Unauthorized(f"the account {user!r} no longer exists; log in again")
        if account.disabled:
            raise disabled_error(user)
        if generation != account.generation:
            raise Unauthorized(
                "your session was ended (the admin disabled the account, set a new password or changed its rights); log in again"
            )

    def ticket_session(self, account: Account) -> str:
        return session_id(self.secret, account.name, account.generation)

    async def revoked(self) -> list[str]:
        """Ids of the sessions ended in the last REVOKED_KEPT seconds (every older generation of those accounts)."""
        since = self.clock() - REVOKED_KEPT
        changed = await self.db.run(lambda s: queries.generations_changed_since(s, since))
        return sorted(ended_sessions(self.secret, changed))


def ended_sessions(secret: bytes, changed: Iterable[tuple[str, int, bool]]) -> set[str]:
    """(name, generation, disabled) of accounts changed lately -> the ids of their ended sessions."""
    ended: set[str] = set()
    for name, generation, disabled in changed:
        ended.update(session_id(secret, name, g) for g in range(generation))
        if disabled:
            ended.add(session_id(secret, name, generation))
    return ended
