"""Numbers in messages as people write them: "1 file", "2 files" (never "1 files" or "file(s)")."""

from __future__ import annotations


def count(n: int, singular: str, plural: str = "") -> str:
    """A number with its noun, agreeing: "1 file", "2 files", "1 patch", "3 patches"."""
    return f"{n} {singular if n == 1 else plural or singular + 's'}"
