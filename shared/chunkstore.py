"""The chunk store: content-addressed, compressed objects (chunks, manifests, patches) by SHA-256.

One small interface, so the directory store of the embedded default, the
in-memory store (shared/memory_store.py) and the S3-compatible object store
(shared/s3_store.py) are interchangeable; the contract suite in
tests/shared/test_chunkstore.py is what every implementation passes. Callers
verify content before `put`; the store only keeps bytes safe.

What only some stores can do is a capability the caller asks for, not a type
to test: `files` (objects are local files: sendfile, open-file caching, the
disk's free space) and `links` (objects can be fetched by a signed URL).
`open_store` makes the store a URL names (MIST_STORE_URL).
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from shared import compression
from shared.durable import sync_data
from shared.errors import ChunkCorrupt, ChunkMissing, StoreError
from shared.manifest import FileEntry
from shared.rawfile import open_fd

QUARANTINE = "quarantine"
_HEX64 = re.compile(r"^[0-9a-f]{64}\Z")
PROBE = b"mist health probe\n"


def is_name(sha256: str) -> bool:
    return _HEX64.match(sha256) is not None


def check_name(sha256: str) -> str:
    """The name itself if it is 64 lowercase hex digits (a SHA-256), else ChunkMissing: no such object can exist."""
    if not _HEX64.match(sha256):
        raise ChunkMissing(f"{sha256[:70]!r} is not a SHA-256 name", sha256)
    return sha256


@dataclass(frozen=True)
class Stored:
    """An object as a store lists it: its stored size, and when it was last written or marked used (epoch seconds)."""

    name: str
    size: int
    used: float


class LocalFiles(Protocol):
    """A store whose objects are files on this machine: the seeder sends them with sendfile and keeps them open."""

    root: Path

    def path(self, sha256: str) -> Path: ...

    def file(self, sha256: str) -> str: ...


class Links(Protocol):
    """A store that can hand out a time-limited URL for an object, so a client fetches it from the store itself."""

    def url(self, sha256: str, seconds: int) -> str: ...


class ChunkStore(Protocol):
    where: str  # for messages: a folder, or s3://bucket/prefix

    @property
    def files(self) -> LocalFiles | None: ...

    @property
    def links(self) -> Links | None: ...

    def has(self, sha256: str) -> bool: ...

    def missing(self, hashes: Iterable[str]) -> list[str]: ...

    def sizes(self, hashes: Iterable[str]) -> dict[str, int]: ...

    def get(self, sha256: str) -> bytes: ...

    def put(self, sha256: str, compressed: bytes | memoryview) -> None:
        """Keep the object; one that is already there is left as it is."""

    def touch(self, hashes: Iterable[str]) -> list[str]:
        """Mark the objects present as just used (the garbage collector's grace period starts again) and return
        the absent ones in the order asked. An object this reports present is not lost to a collection running
        at the same time: either the collector sees the mark and keeps it, or this reports it absent."""

    def listing(self) -> Iterator[Stored]:
        """Every object (not the quarantine), in no particular order."""

    def remove(self, sha256: str) -> None:
        """Remove the object if it is there (a damaged copy before it is written again)."""

    def remove_if_unused(self, sha256: str, cutoff: float) -> int | None:
        """The garbage collector's removal: the object goes unless it was used at or after `cutoff`, also by a
        `touch` racing this call; its stored size if it went, else None."""

    def quarantine(self, sha256: str) -> None:
        """Set a damaged object aside: it is then missing, so the next push of a build that has it uploads it again."""

    def quarantined(self) -> Iterator[str]:
        """The names ever set aside (some may have been uploaded again since): a commit that trusts the previous
        build's chunks to be stored still checks these."""

    def sweep_temporary(self, older_than: float) -> int:
        """Remove what a killed writer or collector left behind before `older_than`; how many."""

    def probe(self) -> None:
        """Write, read back and remove a small object; StoreError if the store cannot (the health check)."""


def names(store: ChunkStore) -> Iterator[str]:
    """Every object's name (for the scrub and backups)."""
    return (stored.name for stored in store.listing())


class DirectoryChunkStore:
    """Objects as files `root/ab/cd/<sha256>`, written to a temporary name and renamed into place; last use is
    the file's mtime."""

    links = None

    def __init__(self, root: Path, durable: bool = True) -> None:
        self.root = Path(root)
        self._root = os.fspath(self.root)
        self.where = self._root
        self.durable = durable
        self.root.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"DirectoryChunkStore(root={str(self.root)!r})"

    @property
    def files(self) -> DirectoryChunkStore:
        return self

    def path(self, sha256: str) -> Path:
        return Path(self._checked(sha256))

    def file(self, sha256: str) -> str:
        """`path` as a string, for a name known to be 64 hex digits (the seeder's hot path: no checks, no Path)."""
        return f"{self._root}/{sha256[:2]}/{sha256[2:4]}/{sha256}"

    def _checked(self, sha256: str) -> str:
        """`file` of a name checked first. A `Path` costs ten times the system call it names: a plan stats every
        chunk of the files it writes (1,600 for 100 MB), and building their paths was a third of its time."""
        return self.file(check_name(sha256))

    def has(self, sha256: str) -> bool:
        return os.path.isfile(self._checked(sha256))

    def missing(self, hashes: Iterable[str]) -> list[str]:
        return [h for h in hashes if not self.has(h)]

    def touch(self, hashes: Iterable[str]) -> list[str]:
        """One utime per object: the check and the mark cannot be split by a collection, which first renames
        an object away (`remove_if_unused`), so a mark either lands before that or finds the object absent."""
        absent = []
        for h in hashes:
            try:
                os.utime(self._checked(h))
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
                found[h] = os.stat(self._checked(h)).st_size
            except (FileNotFoundError, ChunkMissing):
                pass
        return found

    def get(self, sha256: str) -> bytes:
        try:
            with open(self._checked(sha256), "rb") as f:
                return f.read()
        except FileNotFoundError as exc:
            raise ChunkMissing(f"chunk {sha256[:12]} is not in the store", sha256) from exc
        except OSError as exc:
            raise StoreError(f"chunk store could not read {sha256[:12]}: {exc.strerror}") from exc

    def listing(self) -> Iterator[Stored]:
        for dirpath, _dirnames, filenames in os.walk(self.root):
            if Path(dirpath) == self.root / QUARANTINE:
                continue
            for name in filenames:
                if _HEX64.match(name):
                    try:
                        st = os.stat(os.path.join(dirpath, name))
                    except FileNotFoundError:
                        continue
                    yield Stored(name, st.st_size, st.st_mtime)

    def names(self) -> Iterator[str]:
        return names(self)

    def remove(self, sha256: str) -> None:
        try:
            self.path(sha256).unlink(missing_ok=True)
        except OSError as exc:
            raise StoreError(f"chunk store could not remove {sha256[:12]}: {exc.strerror}") from exc

    def remove_if_unused(self, sha256: str, cutoff: float) -> int | None:
        """The object first leaves its name (an atomic rename to a writer's temporary name, which the sweep
        removes if this process dies here), and its time is read again: a touch before the rename shows, and
        it goes back; a touch after it finds the object absent, and the push uploads it again."""
        path = self.path(sha256)
        try:
            if os.stat(path).st_mtime >= cutoff:
                return None
            doomed = path.with_name(f".tmp-gc-{sha256}")
            os.rename(path, doomed)
        except FileNotFoundError:
            return None
        st = os.stat(doomed)
        if st.st_mtime >= cutoff:
            try:
                os.link(doomed, path)
            except FileExistsError:
                pass  # uploaded again meanwhile: the same bytes, under its name
            os.unlink(doomed)
            return None
        os.unlink(doomed)
        return st.st_size

    def quarantine(self, sha256: str) -> None:
        target = self.root / QUARANTINE / sha256
        target.parent.mkdir(exist_ok=True)
        try:
            os.replace(self.path(sha256), target)
        except FileNotFoundError:
            pass

    def quarantined(self) -> Iterator[str]:
        try:
            with os.scandir(self.root / QUARANTINE) as entries:
                return iter([e.name for e in entries if _HEX64.match(e.name)])
        except FileNotFoundError:
            return iter(())
        except OSError as exc:
            raise StoreError(f"chunk store could not list its quarantine: {exc.strerror}") from exc

    def sweep_temporary(self, older_than: float) -> int:
        removed = 0
        for dirpath, _dirnames, filenames in os.walk(self.root):
            for name in filenames:
                path = Path(dirpath) / name
                try:
                    if name.startswith(".tmp-") and path.stat().st_mtime < older_than:
                        path.unlink(missing_ok=True)
                        removed += 1
                except FileNotFoundError:
                    continue
        return removed

    def probe(self) -> None:
        """List the root, write, read back and remove a small file (named as a writer's temporary file, so the
        sweep removes one a crash left)."""
        probe = self.root / f".tmp-healthz-{uuid.uuid4().hex}"
        try:
            with os.scandir(self.root) as entries:
                next(entries, None)
            with open(probe, "xb") as f:
                f.write(PROBE)
            with open(probe, "rb") as f:
                if f.read() != PROBE:
                    raise StoreError(f"chunk store at {self.root} gave back other bytes than were written")
        except OSError as exc:
            raise StoreError(f"chunk store at {self.root} cannot be read and written: {exc.strerror or exc}") from exc
        finally:
            try:
                probe.unlink(missing_ok=True)
            except OSError:
                pass

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


@dataclass(frozen=True)
class StoreSettings:
    """Where a service keeps its objects: MIST_STORE_URL (empty: the data directory's `store/` folder) and, for
    an S3-compatible server that is not AWS, MIST_S3_ENDPOINT_URL. The AWS_* variables are boto3's own."""

    url: str = ""
    s3_endpoint_url: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> StoreSettings:
        return cls(env.get("MIST_STORE_URL", "").strip(), env.get("MIST_S3_ENDPOINT_URL", "").strip())

    def open(self, default_root: Path, durable: bool = True) -> ChunkStore:
        return open_store(self.url, default_root, durable, self.s3_endpoint_url)


def open_store(url: str, default_root: Path, durable: bool = True, s3_endpoint_url: str = "") -> ChunkStore:
    """The store a MIST_STORE_URL names: `s3://BUCKET/PREFIX` (shared/s3_store.py), `file:///PATH` or a plain
    path; empty means the directory `default_root` (the data directory's store)."""
    url = url.strip()
    if not url:
        return DirectoryChunkStore(default_root, durable)
    if url.startswith("s3://"):
        from shared.s3_store import S3ChunkStore  # boto3 is a `server` extra: loaded only for an S3 store

        return S3ChunkStore.from_url(url, s3_endpoint_url)
    if url.startswith("file://"):
        return DirectoryChunkStore(Path(url[len("file://") :]), durable)
    if "://" in url:
        raise StoreError(f"MIST_STORE_URL must be s3://BUCKET/PREFIX, file:///PATH or a folder (got {url!r})")
    return DirectoryChunkStore(Path(url), durable)


def read_file(store: ChunkStore, entry: FileEntry) -> bytes:
    """A file's whole content rebuilt from its chunks, checked against its SHA-256 (patches and deltas are
    made from it: a damaged chunk must not become a patch that yields a wrong file)."""
    data = b"".join(compression.decompress(store.get(ref.sha256), ref.size, ref.sha256) for ref in entry.chunks)
    if hashlib.sha256(data).hexdigest() != entry.sha256:
        raise ChunkCorrupt(f"{entry.path} rebuilt from the store does not match its hash; run the scrub", entry.sha256)
    return data
