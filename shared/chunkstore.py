"""The chunk store: content-addressed, compressed objects (chunks and manifests) by SHA-256.

One small interface so the directory store of the embedded default and an
object store for scale-out are interchangeable; the contract suite in
tests/shared/test_chunkstore.py is what every implementation must pass.
Callers verify content before `put`; the store only keeps bytes safe.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol

from shared import compression
from shared.durable import sync_data
from shared.errors import ChunkCorrupt, ChunkMissing, StoreError
from shared.manifest import FileEntry
from shared.rawfile import open_fd

QUARANTINE = "quarantine"
_HEX64 = re.compile(r"^[0-9a-f]{64}\Z")


class ChunkStore(Protocol):
    def has(self, sha256: str) -> bool: ...

    def missing(self, hashes: Iterable[str]) -> list[str]: ...

    def sizes(self, hashes: Iterable[str]) -> dict[str, int]: ...

    def get(self, sha256: str) -> bytes: ...

    def put(self, sha256: str, compressed: bytes | memoryview) -> None: ...

    def touch(self, hashes: Iterable[str]) -> list[str]: ...


class DirectoryChunkStore:
    """Objects as files `root/ab/cd/<sha256>`, written to a temporary name and renamed into place."""

    def __init__(self, root: Path, durable: bool = True) -> None:
        self.root = Path(root)
        self._root = os.fspath(self.root)
        self.durable = durable
        self.root.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"DirectoryChunkStore(root={str(self.root)!r})"

    def path(self, sha256: str) -> Path:
        if not _HEX64.match(sha256):
            raise ChunkMissing(f"{sha256[:70]!r} is not a SHA-256 name", sha256)
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def file(self, sha256: str) -> str:
        """`path` as a string, for a name known to be 64 hex digits (the seeder's hot path: no checks, no Path)."""
        return f"{self._root}/{sha256[:2]}/{sha256[2:4]}/{sha256}"

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def missing(self, hashes: Iterable[str]) -> list[str]:
        return [h for h in hashes if not self.has(h)]

    def touch(self, hashes: Iterable[str]) -> list[str]:
        """Mark the objects present as just used and return the absent ones, in the order asked.

        The garbage collector never removes an object used within its grace period, so a push
        that relies on a chunk already in the store (it was not listed as missing) keeps it until
        the push commits. One call per object: the check and the mark cannot be split by a sweep.
        """
        absent = []
        for h in hashes:
            try:
                os.utime(self.path(h))
            except (FileNotFoundError, ChunkMissing):
                absent.append(h)
            except OSError as exc:
                raise StoreError(f"chunk store could not mark {h[:12]} as used: {exc.strerror}") from exc
        return absent

    def sizes(self, hashes: Iterable[str]) -> dict[str, int]:
        """Stored (compressed) size of each object present; absent ones are left out."""
        found = {}
        for h in hashes:
            try:
                found[h] = os.stat(self.path(h)).st_size
            except FileNotFoundError:
                pass
        return found

    def get(self, sha256: str) -> bytes:
        try:
            with open(self.path(sha256), "rb") as f:
                return f.read()
        except FileNotFoundError as exc:
            raise ChunkMissing(f"chunk {sha256[:12]} is not in the store", sha256) from exc
        except OSError as exc:
            raise StoreError(f"chunk store could not read {sha256[:12]}: {exc.strerror}") from exc

    def names(self) -> Iterator[str]:
        """Every object in the store (for the scrub job), in no particular order."""
        for dirpath, _dirnames, filenames in os.walk(self.root):
            if Path(dirpath) == self.root / QUARANTINE:
                continue
            for name in filenames:
                if _HEX64.match(name):
                    yield name

    def quarantine(self, sha256: str) -> None:
        """Move a damaged object aside: it is then missing, so the next push of a build that has it uploads it again."""
        target = self.root / QUARANTINE / sha256
        target.parent.mkdir(exist_ok=True)
        try:
            os.replace(self.path(sha256), target)
        except FileNotFoundError:
            pass

    def sweep_temporary(self, older_than: float) -> int:
        """Remove temporary files that a killed writer left behind; return how many."""
        removed = 0
        for dirpath, _dirnames, filenames in os.walk(self.root):
            for name in filenames:
                path = Path(dirpath) / name
                if name.startswith(".tmp-") and path.stat().st_mtime < older_than:
                    path.unlink(missing_ok=True)
                    removed += 1
        return removed

    def put(self, sha256: str, compressed: bytes | memoryview) -> None:
        final = self.path(sha256)
        if final.is_file():
            return
        tmp = final.parent / f".tmp-{uuid.uuid4().hex}"
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            fd = open_fd(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                view = memoryview(compressed)
                while view:
                    view = view[os.write(fd, view) :]
                if self.durable:
                    sync_data(fd)
            finally:
                os.close(fd)
            os.replace(tmp, final)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            if exc.errno == errno.ENOSPC:
                raise StoreError(
                    f"chunk store at {self.root} is out of disk space; free space or move the store, then push again"
                ) from exc
            raise StoreError(f"chunk store could not write {sha256[:12]}: {exc.strerror}") from exc


def read_file(store: ChunkStore, entry: FileEntry) -> bytes:
    """A file's whole content rebuilt from its chunks, checked against its SHA-256 (patches and deltas are
    made from it: a damaged chunk must not become a patch that yields a wrong file)."""
    data = b"".join(compression.decompress(store.get(ref.sha256), ref.size, ref.sha256) for ref in entry.chunks)
    if hashlib.sha256(data).hexdigest() != entry.sha256:
        raise ChunkCorrupt(f"{entry.path} rebuilt from the store does not match its hash; run the scrub", entry.sha256)
    return data
