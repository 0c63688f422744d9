"""The one error tree of Mist, so callers can act on the kind of failure.

    MistError
    ├── ManifestError          a manifest is malformed, hostile or badly signed: reject the build
    │   └── SignatureError     the signature does not verify with the pinned key
    │       └── KeyHandoverError   the tracker's key changed and no signed hand-over leads to it: log in again
    ├── TicketError            a ticket is forged, expired or for something else: refuse to serve
    │   └── TicketSignatureError   not signed by the key we hold: forged, or the tracker's key was rotated
    ├── ChunkError
    │   ├── ChunkMissing       the source does not have it: try the next source
    │   └── ChunkCorrupt       the bytes do not hash to the name: drop them, penalise the source
    ├── PackError              a chunk pack on the wire is malformed or truncated
    ├── PatchError             a patch object or rdiff delta is malformed or does not apply: fetch chunks
    ├── StoreError             the chunk store failed (disk full, permissions)
    ├── BuildInfoError         a launch command or release notes Mist will not store or run
    ├── TrackerError           (tracker/) errors a handler turns into an HTTP status
    ├── ClientError            (client/) errors the `mist` command reports to the user
    └── PipeError              (mistpipe/) errors the admin CLI reports (mistpipe/errors.py)
"""

from __future__ import annotations


class MistError(Exception):
    """Root of every error Mist raises on purpose."""


class ManifestError(MistError):
    """A manifest is malformed or hostile; the build it describes is rejected."""


class SignatureError(ManifestError):
    """A manifest's signature does not verify with the pinned tracker key."""


class KeyHandoverError(SignatureError):
    """The tracker's key is not the pinned one, and no chain of signed hand-overs leads from that one to it."""


class TicketError(MistError):
    """A ticket is forged, expired, or does not grant what was asked."""


class TicketSignatureError(TicketError):
    """A ticket's signature fails with the key we hold: forged, or signed by a key the tracker rotated to (ask it)."""


class ChunkError(MistError):
    """A chunk could not be had from a source."""

    def __init__(self, message: str, chunk_id: str = "") -> None:
        super().__init__(message)
        self.chunk_id = chunk_id


class ChunkMissing(ChunkError):
    """The source does not hold the chunk; ask another source."""


class ChunkCorrupt(ChunkError):
    """The chunk's bytes do not hash to its name; discard them and distrust the source."""


class PackError(MistError):
    """A chunk pack on the wire is malformed or truncated."""


class PatchError(MistError):
    """A patch object or rdiff delta is malformed, or does not turn its source into its target."""


class StoreError(MistError):
    """The chunk store could not read or write (disk full, permissions)."""


class BuildInfoError(MistError):
    """A launch command or release notes that Mist will not store or run; the message says how to write them."""
