"""The tracker's signing key on disk, the keys it retired, the hand-overs between them, and rotating it.

    DATA/signing.key              the current private key (0600)
    DATA/signing.key.next         only while a rotation is unfinished: the key it moves to
    DATA/signing-keys/            the archive (0700, files 0600)
        handovers.json            the chain of hand-overs, oldest first, ending at the current key
        <fingerprint>.key         each retired private key

A rotation runs while no tracker does (tracker/datalock.py): a running tracker
would go on signing tickets and new builds with the old key it loaded, while
its builds carry the new key's signatures. Each step can run again after a
crash, and the tracker refuses to start while `signing.key.next` exists, so it
never serves a half-rotated state.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from shared.errors import KeyHandoverError, SignatureError
from shared.handover import Handover, chain_ends_at, follow, parse_chain
from shared.durable import sync_directory
from shared.signing import Signer, fingerprint
from tracker import datalock
from tracker.db import queries
from tracker.db.engine import Database, open_existing
from tracker.errors import TrackerError

log = logging.getLogger("mist.tracker")
KEY_FILE = "signing.key"
ARCHIVE = "signing-keys"
CHAIN_FILE = "handovers.json"


class KeyFilesError(TrackerError):
    """The key files are in a state the tracker must not start from, or a rotation cannot go on from."""


@dataclass(frozen=True)
class TrackerKeys:
    """What the tracker signs with, and the hand-overs it shows clients pinned to an older key."""

    signer: Signer
    handovers: tuple[Handover, ...]


@dataclass(frozen=True)
class Rotation:
    """What `rotate` did, for the admin command to report."""

    data: Path
    old: str
    new: str
    handed_over: bool
    builds_resigned: int
    resumed: bool

    @property
    def retired_path(self) -> Path:
        return archive_dir(self.data) / f"{fingerprint(self.old)}.key"

    def to_json(self) -> dict[str, object]:
        return {
            "old_key": self.old,
            "old_fingerprint": fingerprint(self.old),
            "new_key": self.new,
            "new_fingerprint": fingerprint(self.new),
            "handed_over": self.handed_over,
            "builds_resigned": self.builds_resigned,
            "resumed": self.resumed,
            "retired_key_file": str(self.retired_path),
        }


def key_path(data: Path) -> Path:
    return data / KEY_FILE


def pending_path(data: Path) -> Path:
    return data / (KEY_FILE + ".next")


def _leaked_marker(data: Path) -> Path:
    return data / (KEY_FILE + ".next.leaked")


def archive_dir(data: Path) -> Path:
    return data / ARCHIVE


def load(data: Path) -> TrackerKeys:
    """The key to sign with (created on first start) and the chain to serve; refuses a half-done rotation."""
    if pending_path(data).exists():
        raise KeyFilesError(
            f"a rotation of the signing key in {data} did not finish; run `mist-admin rotate-key --data {data}` "
            "again to finish it, then start the tracker"
        )
    signer = Signer.load_or_create(key_path(data))
    chain = read_chain(data)
    if not chain_ends_at(chain, signer.public_key):
        log.warning(
            "%s leads to another key than %s (was the key file replaced by hand?); no hand-over is served, "
            "so friends pinned to an older key must log in again",
            archive_dir(data) / CHAIN_FILE,
            key_path(data),
        )
        chain = []
    return TrackerKeys(signer, tuple(chain))


def read_chain(data: Path) -> list[Handover]:
    """The stored chain, checked link by link; a damaged file stops the caller rather than serving nothing."""
    path = archive_dir(data) / CHAIN_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    try:
        chain = parse_chain(json.loads(text))
        if chain:
            follow(chain[0].old, chain[-1].new, chain)
    except (ValueError, KeyHandoverError) as exc:
        raise KeyFilesError(
            f"{path} is damaged ({exc}); restore it from a backup, or move it away to go on without it "
            "(friends pinned to an older key will then have to log in again)"
        ) from exc
    return chain


def rotate_stopped(data: Path, now: int, leaked: bool = False, database_url: str = "") -> Rotation:
    """`mist-admin rotate-key`: rotate on the tracker's own database, refusing while a tracker runs on `data`."""
    if not key_path(data).is_file():
        raise KeyFilesError(f"there is no signing key at {key_path(data)}; is {data} the tracker's data directory (--data)?")
    with datalock.held(data, "rotate the key"):
        db = open_existing(data, database_url)
        try:
            return rotate(data, db, now, leaked)
        finally:
            db.engine.dispose()


def rotate(data: Path, db: Database, now: int, leaked: bool = False) -> Rotation:
    """Move the tracker to a new key: the old one signs a hand-over (unless it leaked), every build is re-signed.

    Run again after a crash, it finishes the same rotation (the same new key).
    """
    current, pending = key_path(data), pending_path(data)
    try:
        old = Signer.load(current)
        resumed = pending.exists()
        new = Signer.load(pending) if resumed else Signer.generate()
    except FileNotFoundError:
        raise KeyFilesError(f"there is no signing key at {current}; is {data} the tracker's data directory (--data)?") from None
    except SignatureError as exc:
        raise KeyFilesError(f"{exc}; restore it from a backup") from exc
    marker = _leaked_marker(data)
    if leaked:
        marker.touch(mode=0o600)  # before the new key exists, so a resumed run keeps the decision
    elif resumed:
        leaked = marker.exists()
    else:
        marker.unlink(missing_ok=True)  # left by a run that died before it made its key: that rotation never began
    if not resumed:
        new.save(pending)  # from here on the tracker refuses to start until the rotation is done
    _retire(data, old)
    handed_over = _record_handover(data, old, new, now, leaked)
    resigned = db.call(lambda s: queries.resign_builds(s, new.sign))  # one transaction: all builds or none
    os.replace(pending, current)
    marker.unlink(missing_ok=True)
    sync_directory(data)
    return Rotation(data, old.public_key, new.public_key, handed_over, resigned, resumed)


def _ensure_archive(data: Path) -> Path:
    path = archive_dir(data)
    path.mkdir(mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def _retire(data: Path, old: Signer) -> None:
    """Keep the old private key: the hand-over it signed can then be made again if the chain file is lost."""
    path = _ensure_archive(data) / f"{fingerprint(old.public_key)}.key"
    if not path.exists():
        old.save(path)


def _record_handover(data: Path, old: Signer, new: Signer, now: int, leaked: bool) -> bool:
    """Append old → new to the chain; True if a hand-over now leads to the new key."""
    chain = read_chain(data)
    if not leaked and chain and (chain[-1].old, chain[-1].new) == (old.public_key, new.public_key):
        return True  # a resumed rotation that got this far before
    if leaked or not chain_ends_at(chain, old.public_key):
        # A leaked key must not vouch for anything; a chain that leads elsewhere (the key file was replaced by
        # hand) helps nobody who trusts the current key. Either way the chain starts again; the old one is kept.
        if chain:
            os.replace(archive_dir(data) / CHAIN_FILE, archive_dir(data) / f"handovers-until-{fingerprint(chain[-1].new)}.json")
        chain = []
    if leaked:
        _write_chain(data, [])
        return False
    issued = max(now, chain[-1].issued_at + 1) if chain else now  # strictly increasing, even within one second
    _write_chain(data, [*chain, Handover.sign(old, new.public_key, issued)])
    return True


def _write_chain(data: Path, chain: list[Handover]) -> None:
    path = _ensure_archive(data) / CHAIN_FILE
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump([h.to_json() for h in chain], f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    sync_directory(path.parent)
