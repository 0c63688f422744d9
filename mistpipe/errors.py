"""Errors the admin's `mistpipe` reports as one line on stderr.

    PipeError
    ├── BuildFolderError     the build folder holds something a build cannot (an unsafe name, a link outside it)
    └── NotConfirmed         a push would drop most of the previous build and was not confirmed (--yes)
"""

from __future__ import annotations

from shared.errors import MistError


class PipeError(MistError):
    """Base of the admin tool's errors."""


class BuildFolderError(PipeError):
    """The build folder holds something a build cannot (an unsafe name, a link outside it, a device)."""


class NotConfirmed(PipeError):
    """The admin did not confirm a push that drops most of the previous build."""
