"""The installed Mist's version, which every tool prints for `--version` (the client's and the server's alike)."""

from __future__ import annotations


def installed_version() -> str:
    """The version of the installed distribution, or a note that it is not installed (run from a bare checkout)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mist")
    except PackageNotFoundError:
        return "unknown (not installed)"
