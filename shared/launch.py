"""Launch commands and release notes: what the admin writes beside a build, checked the same way everywhere.

A launch command is a program of the build (a relative path, like every
manifest path) and its arguments, written as a shell would split them:
`bin/game --fullscreen`. It is not signed with the manifest, so it may only
name a file of the build: a tracker (or anyone between it and a friend) can
choose which of the build's programs Play starts, never another program.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from shared.errors import BuildInfoError, ManifestError
from shared.paths import validate_path

MAX_LAUNCH = 500
MAX_NOTES = 20_000
_ALLOWED_CONTROLS = {"\n", "\t"}


@dataclass(frozen=True)
class LaunchCommand:
    """The program (a path of the build, relative to the install folder) and its arguments."""

    program: str
    args: tuple[str, ...]

    def argv(self, root: str) -> list[str]:
        """The arguments for starting it from the install folder `root`."""
        return [f"{root}/{self.program}", *self.args]


def parse_launch(command: str) -> LaunchCommand:
    """Split and check a launch command; raise BuildInfoError saying what is wrong."""
    if len(command) > MAX_LAUNCH:
        raise BuildInfoError(f"the launch command is longer than {MAX_LAUNCH} characters")
    if any(not c.isprintable() for c in command):
        raise BuildInfoError("the launch command must be one line of printable characters")
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise BuildInfoError(f"the launch command does not split into words ({exc}); check its quotes") from exc
    if not words:
        raise BuildInfoError("the launch command is empty; give the program's path in the build, like 'bin/game'")
    program = words[0].removeprefix("./")
    try:
        validate_path(program)
    except ManifestError as exc:
        raise BuildInfoError(
            f"the launch command must start with a program of the build, as a path relative to its folder like "
            f"'bin/game' (got {words[0]!r})"
        ) from exc
    return LaunchCommand(program, tuple(words[1:]))


def check_notes(notes: str) -> str:
    """Release notes as stored: text of at most MAX_NOTES characters, lines and tabs allowed, no other controls."""
    text = notes.replace("\r\n", "\n").strip()
    if len(text) > MAX_NOTES:
        raise BuildInfoError(f"release notes must be at most {MAX_NOTES} characters (got {len(text)})")
    bad = next((c for c in text if not c.isprintable() and c not in _ALLOWED_CONTROLS), None)
    if bad is not None:
        raise BuildInfoError(f"release notes contain the control character {bad!r}; write plain text")
    return text
