"""What earlier pushes chunked, file by file, so a push reads only the files that changed since.

Re-reading and re-chunking a 100 GB build to find the 1 GB that changed takes as long as the first push.
A file whose size, modification time (to the nanosecond) and file id (inode) are what they were when it
was last chunked, with the same chunking parameters, is taken from here instead. That signature is what
git's index and rsync trust; a tool that rewrites a file in place and then sets its time back would fool
it, which is what `mistpipe push --rescan` is for (it reads everything and refreshes the cache).

A file modified in the last couple of seconds before it was read is not remembered: on file systems with
coarse timestamps a second write within the same tick would keep the same signature.

SQLite in the admin's MIST_HOME; each chunk list is packed as 36 bytes a chunk (SHA-256, size). It also keeps
the manifest of the last build pushed of each game, which later pushes send and receive manifests as deltas from.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path

from shared.chunking import ChunkedFile, ChunkingParams, ChunkRef

FILE_NAME = "push-cache.db"
RACY_SECONDS = 2.0
_REF = 36

SCHEMA = """
CREATE TABLE IF NOT EXISTS chunked (
    root TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    params TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    chunks BLOB NOT NULL,
    PRIMARY KEY (root, path)
);
CREATE TABLE IF NOT EXISTS pushed (
    tracker TEXT NOT NULL,
    game TEXT NOT NULL,
    digest TEXT NOT NULL,
    manifest BLOB NOT NULL,
    PRIMARY KEY (tracker, game)
);
"""

Signature = tuple[int, int, int]  # size, mtime in ns, inode


def signature(st: os.stat_result) -> Signature:
    return st.st_size, st.st_mtime_ns, st.st_ino


def pack_refs(refs: Iterable[ChunkRef]) -> bytes:
    return b"".join(bytes.fromhex(r.sha256) + r.size.to_bytes(4, "big") for r in refs)


def unpack_refs(blob: bytes) -> tuple[ChunkRef, ...]:
    return tuple(
        ChunkRef(blob[i : i + 32].hex(), int.from_bytes(blob[i + 32 : i + _REF], "big")) for i in range(0, len(blob), _REF)
    )


class ScanCache:
    """The chunking of every file of the build folders pushed from this machine, keyed by the file's signature."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)  # one thread at a time
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.executescript(SCHEMA)

    def __repr__(self) -> str:
        return f"ScanCache(path={str(self.path)!r})"

    def close(self) -> None:
        self._db.close()

    def known(self, root: Path, params: ChunkingParams) -> dict[str, tuple[Signature, str, bytes]]:
        """Everything remembered of `root` chunked with `params`: path -> (signature, sha256, packed chunks)."""
        rows = self._db.execute(
            "SELECT path, size, mtime_ns, inode, sha256, chunks FROM chunked WHERE root = ? AND params = ?",
            (_root_key(root), _params_key(params)),
        )
        return {path: ((size, mtime, inode), sha, chunks) for path, size, mtime, inode, sha, chunks in rows}

    def remember(
        self,
        root: Path,
        params: ChunkingParams,
        fresh: Iterable[tuple[str, Signature, ChunkedFile]],
        present: Iterable[str],
        now: float | None = None,
    ) -> None:
        """Record the files just chunked (unless modified too recently to trust) and forget files gone from `root`."""
        now = time.time() if now is None else now
        key, params_key = _root_key(root), _params_key(params)
        rows = [
            (key, rel, sig[0], sig[1], sig[2], params_key, c.sha256, pack_refs(c.chunks))
            for rel, sig, c in fresh
            if now - sig[1] / 1e9 >= RACY_SECONDS
        ]
        keep = set(present)
        self._db.execute("BEGIN")
        try:
            gone = [(key, p) for (p,) in self._db.execute("SELECT path FROM chunked WHERE root = ?", (key,)) if p not in keep]
            self._db.executemany("DELETE FROM chunked WHERE root = ? AND path = ?", gone)
            self._db.executemany("INSERT OR REPLACE INTO chunked VALUES (?,?,?,?,?,?,?,?)", rows)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def last_push(self, tracker: str, game: str) -> tuple[str, bytes] | None:
        """The digest and manifest of the last build of `game` pushed from here: the next push's manifest goes
        to the tracker (and the tracker's latest comes back) as a delta from it."""
        row = self._db.execute("SELECT digest, manifest FROM pushed WHERE tracker = ? AND game = ?", (tracker, game)).fetchone()
        return (row[0], bytes(row[1])) if row else None

    def remember_push(self, tracker: str, game: str, digest: str, manifest: bytes) -> None:
        self._db.execute("INSERT OR REPLACE INTO pushed VALUES (?,?,?,?)", (tracker, game, digest, manifest))


def _root_key(root: Path) -> str:
    return str(root.resolve())


def _params_key(params: ChunkingParams) -> str:
    return json.dumps(params.to_json(), sort_keys=True)
