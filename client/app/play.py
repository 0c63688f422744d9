"""Play: run a build's launch command from its install folder, count the time played, and hold updates meanwhile.

The admin sets the command per build (`mistpipe push --launch`, `mistpipe edit
--launch`): a path inside the install folder and its arguments, like
`bin/game --fullscreen`. The program must lie inside the folder (a command
naming anything outside it is refused), and runs with the folder as its
working directory. While it runs, an update of that game stages its files and
then waits here before swapping them in (client/installer.py's `before_swap`),
so a running game never has its files replaced under it.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from client.errors import InstallError
from client.journal import Confined
from shared.durable import write_atomic
from shared.errors import BuildInfoError
from shared.launch import parse_launch

PLAYED_FILE = "played.json"


class PlayError(InstallError):
    """The game cannot be started (no launch command, a program outside its folder, one that does not exist)."""


def command_line(launch: str, root: Path) -> list[str]:
    """The argument list for `launch` run from `root`; its program must be a file inside `root`."""
    if not launch.strip():
        raise PlayError("this build has no launch command; ask the admin to set one (`mistpipe edit GAME --launch CMD`)")
    try:
        command = parse_launch(launch)
    except BuildInfoError as exc:
        raise PlayError(f"{exc}; ask the admin to fix it (`mistpipe edit GAME --launch CMD`)") from exc
    program = command.program
    try:
        path = Confined(root).path(program)
    except InstallError as exc:
        raise PlayError(
            f"the launch command's program {program!r} is not inside the game's folder {root}; "
            "ask the admin to fix the launch command"
        ) from exc
    if not path.is_file():
        raise PlayError(
            f"the launch command's program {program!r} is not in {root}; "
            "verify and repair the game, or ask the admin to fix the launch command"
        )
    return [str(path), *command.args]


@dataclass
class Session:
    game: str
    process: asyncio.subprocess.Process
    started: float
    closed: asyncio.Event = field(default_factory=asyncio.Event)


class Player:
    """The games running now and the time played per game (kept in MIST_HOME/played.json)."""

    def __init__(self, home: Path, tell: Callable[[str, dict[str, Any]], None], clock: Callable[[], float] = time.time) -> None:
        self.path = home / PLAYED_FILE
        self.tell, self.clock = tell, clock
        self.running: dict[str, Session] = {}
        self.played: dict[str, float] = _load(self.path)
        self.waiting: dict[str, Callable[[bool], None]] = {}  # game -> tells the queue its update waits

    def __repr__(self) -> str:
        return f"Player(running={sorted(self.running)})"

    def seconds_played(self, game: str) -> float:
        session = self.running.get(game)
        return self.played.get(game, 0.0) + (self.clock() - session.started if session else 0.0)

    async def play(self, game: str, launch: str, root: Path, group: asyncio.TaskGroup) -> None:
        if game in self.running:
            raise PlayError(f"{game} is already running")
        argv = await asyncio.to_thread(command_line, launch, root)
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                cwd=root,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                **_detached(),
            )
        except OSError as exc:
            raise PlayError(f"could not start {argv[0]} ({exc.strerror or exc}); verify and repair the game") from exc
        session = self.running[game] = Session(game, process, self.clock())
        self.tell("playing", {"game": game, "playing": True})
        group.create_task(self._watch(session))

    async def _watch(self, session: Session) -> None:
        try:
            await session.process.wait()
        finally:
            self.played[session.game] = self.played.get(session.game, 0.0) + self.clock() - session.started
            del self.running[session.game]
            await asyncio.to_thread(_save, self.path, self.played)
            session.closed.set()
            self.tell("playing", {"game": session.game, "playing": False})

    async def until_closed(self, game: str) -> None:
        """Return once `game` is not running (at once if it is not)."""
        session = self.running.get(game)
        if session is None:
            return
        tell = self.waiting.get(game)
        if tell is not None:
            tell(True)
        try:
            await session.closed.wait()
        finally:
            if tell is not None:
                tell(False)


def _detached() -> dict[str, Any]:
    """The game outlives a stopped daemon: its own session (POSIX) or process group (Windows)."""
    if sys.platform == "win32":
        import subprocess

        return {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)}
    return {"start_new_session": True}


def _load(path: Path) -> dict[str, float]:
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        return {str(k): float(v) for k, v in body.items()}
    except (FileNotFoundError, ValueError, AttributeError, TypeError):
        return {}


def _save(path: Path, played: dict[str, float]) -> None:
    write_atomic(path, json.dumps({k: round(v, 1) for k, v in played.items()}).encode())


def human_duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 1:
        return "less than a minute"
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"
