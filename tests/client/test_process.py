"""Is the daemon alive, asked the Windows way (OpenProcess, GetExitCodeProcess) of a stand-in kernel32 that
answers for real processes here, and the POSIX way; and stopping on a signal without add_signal_handler."""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import subprocess
import sys

from client import process


class Kernel32:
    """Windows' calls the check makes, answered for this machine's processes."""

    def __init__(self, ours: bool = True) -> None:
        self.ours, self.open_handles, self.last_error = ours, 0, 0

    def OpenProcess(self, access: int, inherit: bool, pid: int) -> int:
        assert access == process.PROCESS_QUERY_LIMITED_INFORMATION
        if not process.alive_posix(pid):
            self.last_error = 87  # ERROR_INVALID_PARAMETER: no such process
            return 0
        if not self.ours:
            self.last_error = process.ERROR_ACCESS_DENIED
            return 0
        self.open_handles += 1
        return pid

    def GetLastError(self) -> int:
        return self.last_error

    def GetExitCodeProcess(self, handle: int, code: object) -> bool:
        ctypes.cast(code, ctypes.POINTER(ctypes.c_ulong)).contents.value = process.STILL_ACTIVE  # type: ignore[call-overload]
        return True

    def CloseHandle(self, handle: int) -> bool:
        self.open_handles -= 1
        return True


def test_alive_both_ways_for_a_running_and_an_ended_process() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    kernel32 = Kernel32()
    try:
        assert process.alive_posix(child.pid) and process.alive_windows(child.pid, kernel32)
        assert process.alive_windows(child.pid, Kernel32(ours=False))  # another user's: it exists
    finally:
        child.kill()
        child.wait()
    assert not process.alive_posix(child.pid) and not process.alive_windows(child.pid, kernel32)
    assert kernel32.open_handles == 0
    assert process.alive(os.getpid())


async def test_the_plain_handler_way_stops_the_loop_and_puts_the_old_handler_back() -> None:
    stopped = asyncio.Event()
    before = signal.getsignal(signal.SIGUSR1)
    undo = process.on_stop_with_handlers(asyncio.get_running_loop(), stopped.set, ("SIGUSR1",))
    try:
        signal.raise_signal(signal.SIGUSR1)
        async with asyncio.timeout(30):
            await stopped.wait()
    finally:
        undo()
    assert signal.getsignal(signal.SIGUSR1) == before
