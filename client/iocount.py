"""Bytes this process has had written to storage, as the kernel counts them: what an update really wrote.

Linux counts them per process in /proc/self/io (`write_bytes`, at the time
pages are dirtied: page-cache writes count, reads and sockets do not).
Elsewhere there is no such count, and -1 says so.
"""

from __future__ import annotations

import sys


def written_so_far() -> int:
    """`write_bytes` of this process, or -1 where the platform does not count it."""
    if sys.platform != "linux":
        return -1
    try:
        with open("/proc/self/io", "rb") as f:
            for line in f:
                if line.startswith(b"write_bytes:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return -1
