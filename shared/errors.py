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
    ├── ProtocolError          a message on one of Mist's wires broke its protocol; whose breach it was decides
    │   ├── RemoteProtocolError    the other side broke it: drop that side (a friend is reported), keep nothing it sent
    │   │   ├── PackError      a chunk pack or hash list that came over HTTP is malformed or truncated
    │   │   │   └── RequestTooLarge    (seeder/) a request body larger than its route takes: 413
    │   │   ├── PeerProtocolError  (client/peerwire.py) a friend broke the peer wire protocol
    │   │   └── TrackerUnreadable  (client/errors.py; also a TrackerUnavailable) an answer of the tracker Mist cannot read
    │   └── LocalProtocolError     we were about to break it: a bug on this side, logged as one; no one else is blamed
    ├── PatchError             a patch object or rdiff delta is malformed or does not apply: fetch chunks
    ├── StoreError             the chunk store failed (disk full, permissions)
    │   └── DiskFull           (shared/service/disk_space.py) the server's disk has no room: 507
    ├── BuildInfoError         a launch command or release notes Mist will not store or run
    ├── LockBusy               (shared/filelock.py) another process holds the lock: say who, and what to do
    ├── SettingsError          a setting (a MIST_* variable, the sharing settings) is malformed: say what to write
    │   └── PublicUrlError     (tracker/public_url.py) MIST_PUBLIC_URL is no address friends can reach
    ├── NotConfirmed           a step that drops most of what is there was not confirmed: nothing changed; --yes
    ├── TrackerError           (tracker/) errors a handler or an admin command reports (tracker/errors.py)
    ├── ClientError            (client/) errors the `mist` command and the app report to the user (client/errors.py)
    └── PipeError              (mistpipe/) errors the admin CLI reports (mistpipe/errors.py)

Each part draws its own subtree in its errors module, and tests/shared/test_error_tree.py holds every
drawing to the classes the packages define, so a class cannot join the tree without joining a drawing.
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


class ProtocolError(MistError):
    """A message on one of Mist's wires broke its protocol; the subclass says whose breach it was (as h11's do)."""


class RemoteProtocolError(ProtocolError):
    """The other side sent what the protocol forbids: stop trusting it (drop a friend and report it; retry a server)."""


class LocalProtocolError(ProtocolError):
    """We were about to send what the protocol forbids: a bug on this side, logged as one; the peer is not blamed."""


class PackError(RemoteProtocolError):
    """A chunk pack or hash list that came over HTTP is malformed or truncated."""


class PatchError(MistError):
    """A patch object or rdiff delta is malformed, or does not turn its source into its target."""


class StoreError(MistError):
    """The chunk store could not read or write (disk full, permissions)."""


class BuildInfoError(MistError):
    """A launch command or release notes that Mist will not store or run; the message says how to write them."""


class SettingsError(MistError):
    """A setting is malformed (a MIST_* variable, the friends' sharing settings); the message says what to write."""


class NotConfirmed(MistError):
    """A step that would drop most of what is there (an install's files, a build's) and no one said yes; `why`
    says what, for a prompt or the app's dialog, and `then` what was left as it was and how to go ahead."""

    def __init__(self, why: str, then: str = "Nothing was changed; if that is what you want, run again with --yes") -> None:
        super().__init__(f"{why}. {then}")
        self.why = why
