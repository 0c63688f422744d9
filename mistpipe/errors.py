"""Errors the admin's `mistpipe` reports as one line on stderr.

    PipeError
    └── BuildFolderError     the build folder holds something a build cannot (an unsafe name, a link outside it)

A push that would drop most of the previous build unconfirmed raises shared.errors.NotConfirmed.
"""

from __future__ import annotations

from shared.errors import MistError, NotConfirmed as NotConfirmed


class PipeError(MistError):
    """Base of the admin tool's errors."""


class BuildFolderError(PipeError):
    """The build folder holds something a build cannot (an unsafe name, a link outside it, a device)."""
