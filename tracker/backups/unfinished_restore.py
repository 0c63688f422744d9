"""The mark a restore leaves in a data directory until it has finished, and what refuses to run meanwhile.

Until `mist-admin restore` finishes, the directory holds part of a database and
part of a chunk store. A tracker started on it would serve that; a collector
would sweep objects the half-loaded catalog does not name yet. Both refuse,
with the command that finishes the restore.
"""

from __future__ import annotations

from pathlib import Path

MARKER = ".restore-unfinished"


def refusal(data: Path, doing: str) -> str | None:
    """The one-line reason not to `doing` ("start the server") while a restore into `data` is unfinished, else None."""
    if not (data / MARKER).exists():
        return None
    return (
        f"a restore into {data} did not finish; run `mist-admin restore BACKUP --data {data}` again "
        f"(it carries on where it stopped) before you {doing}"
    )
