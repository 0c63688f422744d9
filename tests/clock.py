"""Test helper: a clock that stands still until a test moves it (`clock.now += 30`)."""

from __future__ import annotations


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def __repr__(self) -> str:
        return f"Clock(now={self.now})"

    def wait(self, seconds: float) -> None:
        """In place of `time.sleep` for the code under test: the time passes at once."""
        self.now += seconds
