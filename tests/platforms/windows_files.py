"""Windows' refusals to rename over or delete a file, over real files here (for client/swap.py's tests).

Windows refuses (PermissionError, "Access is denied") to replace or delete a read-only file, and
("being used by another process") one that a program holds open without sharing its deletion. Linux
does neither, so this stand-in says no where Windows would: `open` holds a file until `close`.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class WindowsFiles:
    held: dict[Path, int] = field(default_factory=dict)  # path -> refusals left before its program closes it

    def open(self, path: Path, refusals: int = 1_000_000) -> None:
        self.held[path] = refusals

    def _refuse(self, path: Path) -> None:
        if path in self.held:
            self.held[path] -= 1
            if self.held[path] < 0:
                del self.held[path]
            else:
                raise PermissionError(13, "The process cannot access the file because it is being used by another process")
        if path.exists() and not path.stat().st_mode & stat.S_IWRITE:
            raise PermissionError(13, "Access is denied")

    def rename(self, source: Path, target: Path) -> None:
        self._refuse(source)
        self._refuse(target)
        os.replace(source, target)

    def unlink(self, path: Path) -> None:
        self._refuse(path)
        path.unlink()
