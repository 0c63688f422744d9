"""Named points where the test suite can SIGKILL the client, to prove every interruption resumes.

Set MIST_CRASH_AT=<point> (tests do, users never need to; read at start by client/settings.py, which
arms it here): the process kills itself with SIGKILL the first time it reaches that point, exactly as a
power cut or `kill -9` would, with no cleanup and no flushing.
"""

from __future__ import annotations

import os
import signal
import sys

POINTS = ("undo-sealed", "fetched-batch", "staged", "journal-written", "mid-swap", "pushed-batch")
_armed = ""


def arm(point: str) -> None:
    """Kill this process at `point` from now on ("" disarms)."""
    global _armed
    if point and point not in POINTS:
        raise ValueError(f"no crash point {point!r}; the points are {', '.join(POINTS)}")
    _armed = point


def reach(point: str) -> None:
    if _armed == point:
        if sys.platform == "win32":
            os.kill(os.getpid(), signal.SIGTERM)  # TerminateProcess: as abrupt as SIGKILL
        else:
            os.kill(os.getpid(), signal.SIGKILL)
