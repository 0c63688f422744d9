"""Progress bars for people on stderr (rich), and silence for scripts (--json, or stderr not a terminal)."""

from __future__ import annotations

import sys
from typing import Any, Protocol


class Bar(Protocol):
    def advance(self, amount: int) -> None: ...


class Progress(Protocol):
    def bar(self, description: str, total: int) -> Bar: ...

    def say(self, message: str) -> None: ...

    def __enter__(self) -> "Progress": ...

    def __exit__(self, *exc: object) -> None: ...


def human(n: float) -> str:
    """A byte count for people: 1.5 MB, 320 KB."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


class _NullBar:
    def advance(self, amount: int) -> None:
        pass


class Quiet:
    """No output: for --json and for scripts whose stderr is not a terminal."""

    def bar(self, description: str, total: int) -> Bar:
        return _NullBar()

    def say(self, message: str) -> None:
        pass

    def __enter__(self) -> "Quiet":
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class _RichBar:
    def __init__(self, progress: Any, task_id: Any) -> None:  # rich's Progress and TaskID, imported lazily
        self._progress, self._task = progress, task_id

    def advance(self, amount: int) -> None:
        self._progress.advance(self._task, amount)


class Bars:
    """rich progress bars with transfer sizes and speeds."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress as RichProgress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._console = Console(stderr=True)
        self._progress = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self._console,
            transient=False,
        )

    def bar(self, description: str, total: int) -> Bar:
        return _RichBar(self._progress, self._progress.add_task(description, total=total))

    def say(self, message: str) -> None:
        self._console.print(message, highlight=False)

    def __enter__(self) -> "Bars":
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()


def for_output(json_output: bool) -> Progress:
    """Bars only for a person: not with --json, and not when stderr is not a terminal."""
    if json_output or not sys.stderr.isatty():
        return Quiet()
    return Bars()
