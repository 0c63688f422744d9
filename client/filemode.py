"""A file's executable bit and its space on disk, where the OS keeps them and where it does not.

Windows keeps no executable bit: `stat` guesses one from the extension (.exe,
.bat) and `chmod` only sets or clears read-only. There the manifest's bit is
taken as true of every file (a game starts by its .exe whatever the bit says),
so `verify` never fails a file for a bit no Windows disk can hold. Windows'
stat also has no block count; the file's size stands in for what it takes.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

EXECUTABLE, PLAIN = 0o755, 0o644
KEEPS_BITS = sys.platform != "win32"


def executable(path: Path, expected: bool, keeps_bits: bool = KEEPS_BITS) -> bool:
    """The file's executable bit; where the OS keeps none, `expected` (what the manifest says)."""
    if not keeps_bits:
        return expected
    return bool(path.stat().st_mode & stat.S_IXUSR)


def set_mode(path: Path, executable: bool) -> None:
    """rwxr-xr-x or rw-r--r--; on Windows both just leave the file writable (not read-only)."""
    os.chmod(path, EXECUTABLE if executable else PLAIN)


def allocated(st: os.stat_result) -> int:
    """Bytes the file takes on disk (a sparse staged file takes less than its size); its size where unknown."""
    blocks = getattr(st, "st_blocks", None)
    return st.st_size if blocks is None else int(blocks) * 512
