"""Install folders whose files lie deeper than Windows' 260-character limit.

Windows refuses a path longer than MAX_PATH (260) unless the machine has long
paths turned on, which is off by default; game folders nest deep. The
extended-length form (`\\\\?\\C:\\...`, `\\\\?\\UNC\\server\\share\\...`) lifts the limit
for every call given such a path, so the installer works under that form of the
install folder and every path it makes from it. The form takes only absolute,
normalised paths with backslashes: the install folder is resolved first and the
rest is joined by pathlib, which writes backslashes. Elsewhere paths stay as they are.
"""

from __future__ import annotations

import ntpath
import sys
from pathlib import Path

PREFIX = "\\\\?\\"
UNC_PREFIX = PREFIX + "UNC\\"


def extended_windows(path: str) -> str:
    """The extended-length form of an absolute Windows path (one already in that form is returned as it is)."""
    if path.startswith(PREFIX):
        return path
    if not ntpath.isabs(path):
        raise ValueError(f"only an absolute path has an extended-length form (got {path!r})")
    normal = ntpath.normpath(path)
    if normal.startswith("\\\\"):  # \\server\share\... -> \\?\UNC\server\share\...
        return UNC_PREFIX + normal[2:]
    return PREFIX + normal


def plain_windows(path: str) -> str:
    """The usual form of a path, for people to read and for the client's records."""
    if path.startswith(UNC_PREFIX):
        return "\\\\" + path[len(UNC_PREFIX) :]
    if path.startswith(PREFIX):
        return path[len(PREFIX) :]
    return path


def extended(path: Path) -> Path:
    """`path` (absolute) in the form whose length Windows does not limit; unchanged elsewhere."""
    if sys.platform == "win32":
        return Path(extended_windows(str(path)))
    return path


def plain(path: Path) -> Path:
    if sys.platform == "win32":
        return Path(plain_windows(str(path)))
    return path
