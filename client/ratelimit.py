"""A token bucket that says how long to wait before moving bytes, so sharing stays under the user's caps.

Pure: the caller passes the time as a float (the event loop's clock) and does
the waiting. A reservation is taken at once even when it puts the bucket in
debt, so a chunk larger than the burst still goes; whoever reserves next waits
for the debt as well, which keeps the long-run average at the rate.
"""

from __future__ import annotations

import math


CAP_BURST = 256 * 1024  # what a user's cap lets through at once: one or two chunks


class TokenBucket:
    """Up to `burst` bytes at once, then `rate` bytes per second on average; `rate` None means unlimited."""

    def __init__(self, rate: float | None, burst: int) -> None:
        if burst < 0:
            raise ValueError(f"burst must be 0 or more bytes (got {burst})")
        self._rate = _checked(rate)
        self._burst = burst
        self._tokens = float(burst)  # negative while in debt
        self._at = -math.inf  # the time tokens were last counted

    @property
    def rate(self) -> float | None:
        return self._rate

    def delay(self, size: int, now: float) -> float:
        """Reserve `size` bytes; return the seconds to wait before moving them (0.0 if they may go now)."""
        if size < 0:
            raise ValueError(f"size must be 0 or more bytes (got {size})")
        if self._rate is None:
            return 0.0
        self._refill(now)
        self._tokens -= size
        return 0.0 if self._tokens >= 0 else -self._tokens / self._rate

    def set_rate(self, rate: float | None, now: float) -> None:
        """Change the rate from `now` on: time before it accrues at the old rate, debt already taken stays owed."""
        rate = _checked(rate)
        if self._rate is not None:
            self._refill(now)
        if rate is None or self._rate is None:
            # Going unlimited forgives debt; leaving it starts empty, as bytes sent meanwhile were not counted.
            self._tokens = 0.0
        self._rate = rate
        self._at = max(self._at, now)

    def _refill(self, now: float) -> None:
        assert self._rate is not None
        if now > self._at:  # a clock that steps back mints nothing
            self._tokens = min(float(self._burst), self._tokens + (now - self._at) * self._rate)
            self._at = now

    def __repr__(self) -> str:
        rate = "unlimited" if self._rate is None else f"{self._rate:g} B/s"
        return f"<TokenBucket {rate} burst={self._burst} tokens={self._tokens:.0f} at={self._at:g}>"


def _checked(rate: float | None) -> float | None:
    if rate is not None and not rate > 0:
        raise ValueError(f"rate must be more than 0 bytes/s, or None for unlimited (got {rate})")
    return None if rate is None else float(rate)
