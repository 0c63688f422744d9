"""The journal's two file operations, replace and remove, made to work over Windows' refusals.

On Linux and macOS a rename replaces any file. Windows refuses with
PermissionError in two cases a game's folder meets: the old file is read-only
(some games and launchers mark their files so), and the old file is open
(the game is running, or a virus scanner or the search indexer is reading the
new file for a moment). A read-only file is made writable and the step tried
again; an open one is waited for a few seconds, then `FileInUse` says which
file and what to do. The journal is still there then, so the same command
finishes the swap once the file is closed.
"""

from __future__ import annotations

import os
import stat
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from client.errors import InstallError

PATIENCE = 5.0  # seconds a scanner or indexer may hold a file before we say so


class FileInUse(InstallError):
    """Windows will not replace or remove a file another program has open."""


@dataclass
class Patient:
    """Retries of a step Windows refused because a file is open, within `patience` seconds."""

    patience: float = PATIENCE
    clock: Callable[[], float] = time.monotonic
    wait: Callable[[float], None] = time.sleep  # between attempts; the tests pass one that moves their clock
    rename: Callable[[Path, Path], None] = os.replace  # the tests pass Windows' refusals
    unlink: Callable[[Path], None] = Path.unlink
    waits: list[float] = field(default_factory=list)

    def run(self, step: Callable[[], None], path: Path, doing: str) -> None:
        deadline = self.clock() + self.patience
        pause = 0.05
        while True:
            try:
                step()
                return
            except PermissionError as exc:
                if _clear_read_only(path):
                    continue  # it was read-only: try again at once
                if self.clock() + pause > deadline:
                    raise FileInUse(
                        f"cannot {doing} {path}: another program has it open ({exc.strerror}); close the game "
                        "(or whatever uses it) and run the same command again: it carries on where it stopped"
                    ) from exc
                self.waits.append(pause)
                self.wait(pause)
                pause = min(pause * 2, 1.0)


def _clear_read_only(path: Path) -> bool:
    """Make a read-only file writable; True if it was read-only (the refusal may have been that)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    if mode & stat.S_IWRITE:
        return False
    os.chmod(path, mode | stat.S_IWRITE)
    return True


def replace(staged: Path, final: Path, patient: Patient | None = None) -> None:
    """os.replace, through Windows' read-only and open-file refusals."""
    if sys.platform != "win32" and patient is None:
        os.replace(staged, final)
        return
    patient = patient or Patient()
    patient.run(lambda: patient.rename(staged, final), final, "replace")


def remove(path: Path, patient: Patient | None = None) -> None:
    """unlink, through Windows' read-only and open-file refusals."""
    if sys.platform != "win32" and patient is None:
        path.unlink()
        return
    patient = patient or Patient()
    patient.run(lambda: patient.unlink(path), path, "remove")
