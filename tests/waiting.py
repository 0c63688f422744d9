"""`wait_until`: the suite's one way to wait for something that has no event to wait on.

It polls a condition until it holds or a deadline passes, and fails with what it was waiting for, so a test
never sleeps a fixed time and never hangs. The deadline is generous (the suite runs on a loaded machine):
it bounds a failure, it is not a timing that a pass depends on. A condition that can tell the wait is
hopeless (the process it waits on has exited) raises AssertionError itself, and the wait ends there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
POLL = 0.02  # seconds between looks: short enough to add little to a test, long enough to leave the CPU alone
What = str | Callable[[], str]  # a callable is asked at the failure, so the message can show the state then


def _failure(what: What, timeout: float, last: object) -> AssertionError:
    said = what() if callable(what) else what
    shown = "" if last is None or isinstance(last, bool) else f" (last: {last!r:.300})"
    return AssertionError(f"waited {timeout:.0f} s for {said}, and it did not happen{shown}")


def wait_until(condition: Callable[[], T | None], what: What, timeout: float = 30.0, poll: float = POLL) -> T:
    """The first truthy value of `condition()`; AssertionError naming `what` if none came within `timeout`.
    Poll slower than the default when one look is costly (a command run, a page evaluated)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise _failure(what, timeout, value)
        time.sleep(poll)

