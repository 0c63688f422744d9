"""`wait_until`: the suite's one way to wait for something that has no event to wait on.

It polls a condition until it holds or a deadline passes, and fails with what it was waiting for, so a test
never sleeps a fixed time and never hangs. The deadline is generous (the suite runs on a loaded machine):
it bounds a failure, it is not a timing that a pass depends on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
POLL = 0.02  # seconds between looks: short enough to add little to a test, long enough to leave the CPU alone


def wait_until(condition: Callable[[], T | None], what: str, timeout: float = 30.0, poll: float = POLL) -> T:
    """The first truthy value of `condition()`; AssertionError naming `what` if none came within `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}, and it did not happen")
        time.sleep(poll)


async def wait_until_async(condition: Callable[[], Awaitable[T | None]], what: str, timeout: float = 30.0,
                           poll: float = POLL) -> T:
    """`wait_until` for a condition that must be awaited (a request to a server under test)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}, and it did not happen")
        await asyncio.sleep(poll)
