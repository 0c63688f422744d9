"""Is a process still running, and stopping on Ctrl-C or a service manager's signal: the same on every OS.

On Windows `os.kill(pid, 0)` is not a harmless probe: signal 0 is CTRL_C_EVENT,
so it would interrupt the daemon it asks about. There the process is opened
and its exit code read instead. Windows' event loop has no
`add_signal_handler`; a plain signal handler that wakes the loop does the same.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio  # annotations only: `mist status` and `mist ls` look for the daemon without loading asyncio

PROCESS_QUERY_LIMITED_INFORMATION = 0x1000
STILL_ACTIVE = 259
ERROR_ACCESS_DENIED = 5


def alive_posix(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process with that id: it exists
    return True


def alive_windows(pid: int, kernel32: Any = None) -> bool:
    """OpenProcess + GetExitCodeProcess (kernel32 from ctypes; the tests pass a stand-in)."""
    import ctypes

    if kernel32 is None:
        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]  # Windows only
    handle = kernel32.OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, False, pid)
    if not handle:
        return bool(kernel32.GetLastError() == ERROR_ACCESS_DENIED)  # exists, but not ours to open
    try:
        code = ctypes.c_ulong()
        if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
            return False
        return code.value == STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


def alive(pid: int) -> bool:
    if sys.platform == "win32":
        return alive_windows(pid)
    return alive_posix(pid)


STOP_SIGNALS = ("SIGTERM", "SIGINT") if sys.platform != "win32" else ("SIGINT", "SIGBREAK")


def on_stop_with_handlers(
    loop: asyncio.AbstractEventLoop, stop: Callable[[], object], names: tuple[str, ...]
) -> Callable[[], None]:
    """Windows' way: plain handlers that hand the stop to the loop's thread. Returns how to put the old ones back."""
    previous = {}
    for name in names:
        number = getattr(signal, name)
        previous[number] = signal.signal(number, lambda _n, _f: loop.call_soon_threadsafe(stop))

    def undo() -> None:
        for number, handler in previous.items():
            signal.signal(number, handler)

    return undo


def on_stop(loop: asyncio.AbstractEventLoop, stop: Callable[[], object]) -> Callable[[], None]:
    """Call `stop` on Ctrl-C or a service manager's stop, like Ctrl-C; returns how to undo it."""
    try:
        for name in STOP_SIGNALS:
            loop.add_signal_handler(getattr(signal, name), stop)
    except NotImplementedError:  # Windows' proactor loop
        return on_stop_with_handlers(loop, stop, STOP_SIGNALS)

    def undo() -> None:
        for name in STOP_SIGNALS:
            loop.remove_signal_handler(getattr(signal, name))

    return undo
