"""Slowing and then refusing repeated failed logins (pure logic: the caller passes the clock).

Failures are counted per account and per address over a window. An account
that keeps failing is answered more and more slowly, from any address, which
makes guessing expensive without locking anyone out. Refusal is keyed by
account *and* address (and by address alone for one address trying many
accounts), so an attacker elsewhere cannot lock the admin out, and every
refusal ends when the window has passed.

An attempt is counted as a failure when it begins, in the same step as the
check, and taken back when its password proves right: so many attempts sent
at once are counted before any of them is answered, and the tenth is refused
however many are in flight.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import TypeVar

from tracker.errors import TrackerError

Key = TypeVar("Key")


class LoginRefused(TrackerError):
    """Too many failed logins from here: try again after `retry_after` seconds."""

    status = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; try again in {retry_after} s")
        self.retry_after = retry_after
        self.detail = {"retry_after": retry_after}


@dataclass(frozen=True)
class Attempt:
    """A login attempt under way, counted as failed until its password proves right."""

    account: str
    address: str
    at: float
    delay: float  # how long to wait before answering it


@dataclass
class Throttle:
    window: float = 900.0
    slow_after: int = 3
    first_delay: float = 0.1
    max_delay: float = 2.0
    refuse_after: int = 10
    address_refuse_after: int = 50
    _by_account: dict[str, deque[float]] = field(default_factory=dict)
    _by_pair: dict[tuple[str, str], deque[float]] = field(default_factory=dict)
    _by_address: dict[str, deque[float]] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Throttle(accounts={len(self._by_account)}, addresses={len(self._by_address)})"

    def _recent(self, table: dict[Key, deque[float]], key: Key, now: float) -> deque[float]:
        times = table.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del table[key]
        return times

    def begin(self, account: str, address: str, now: float) -> Attempt:
        """Before checking a password: raise LoginRefused, or count the attempt as failed until `succeeded` takes
        it back, and say how long to wait before answering."""
        pair = self._recent(self._by_pair, (account, address), now)
        if len(pair) >= self.refuse_after:
            raise LoginRefused(self._retry_after(pair, now))
        from_address = self._recent(self._by_address, address, now)
        if len(from_address) >= self.address_refuse_after:
            raise LoginRefused(self._retry_after(from_address, now))
        failures = len(self._recent(self._by_account, account, now))
        delay = 0.0 if failures < self.slow_after else min(self.max_delay, self.first_delay * 2 ** (failures - self.slow_after))
        self._by_account.setdefault(account, deque()).append(now)
        self._by_pair.setdefault((account, address), deque()).append(now)
        self._by_address.setdefault(address, deque()).append(now)
        return Attempt(account, address, now, delay)

    def _retry_after(self, times: deque[float], now: float) -> int:
        """Seconds until the oldest counted failure leaves the window."""
        return max(1, math.ceil(times[0] + self.window - now))

    def succeeded(self, attempt: Attempt) -> None:
        """The right password: the attempt was no failure, and this pair's failures are forgotten (the account's
        earlier ones, and its slow-down, stay)."""
        self._by_pair.pop((attempt.account, attempt.address), None)
        for table, key in ((self._by_account, attempt.account), (self._by_address, attempt.address)):
            times = table.get(key)
            if times is not None and attempt.at in times:
                times.remove(attempt.at)
                if not times:
                    del table[key]
