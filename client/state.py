"""The client's record of what is installed where (SQLite in MIST_HOME).

The install directory's own journal is the truth during a swap; this database
is updated when a swap completes, so it always names a build that is fully on disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import sqlite3
import time
import zlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from client import longpath
from client.errors import RecordLost
from shared.durable import link_or_copy_atomic, sync_directory, write_atomic

if TYPE_CHECKING:  # imported where a build is read: `mist --help`, `ls` and `status` need none (its imports cost 50 ms)
    from shared.build_index import BuildIndex
    from shared.manifest_delta import Rebuilt

SCHEMA = """
CREATE TABLE IF NOT EXISTS installs (
    game TEXT PRIMARY KEY,
    dir TEXT NOT NULL,
    version TEXT NOT NULL,
    digest TEXT NOT NULL,
    manifest BLOB NOT NULL,
    installed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS build_indexes (
    digest TEXT PRIMARY KEY,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS file_stats (
    game TEXT PRIMARY KEY,
    digest TEXT NOT NULL,
    stats BLOB NOT NULL
);
"""

BUILDS = "builds"  # in MIST_HOME: each installed build's manifest and index, as files named by its digest
_MANIFEST, _INDEX, _INCOMING = "manifest", "index", ".part"
INCOMING_KEPT = 24 * 3600  # seconds a fetched manifest's file may be left before `record` sweeps it away
_DIGEST = re.compile(r"[0-9a-f]{64}\Z")

FileStats = dict[str, tuple[int, int]]  # path -> (size, mtime in ns) of each file as Mist left it


def _holds(path: Path, digest: str) -> bool:
    """Whether the file is there with the bytes of that SHA-256 (0.1 s for a 100 GB build's 124 MB manifest,
    against writing it again and fsyncing it)."""
    try:
        with path.open("rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest() == digest
    except FileNotFoundError:
        return False


@dataclass(frozen=True)
class Install:
    game: str
    dir: Path
    version: str
    digest: str
    state: "State" = field(repr=False, compare=False)

    @property
    def build(self) -> BuildIndex:
        """The installed build's compact index (kept in MIST_HOME/builds): read when first asked for, never the parsed
        manifest, which is ~260 MB of Python objects for a 100 GB build."""
        return self.state.index(self.digest)


class State:
    def __init__(self, home: Path) -> None:
        self.path = home / "client.db"
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.executescript(SCHEMA)
        self._builds = home / BUILDS
        self._indexes: dict[str, BuildIndex] = {}  # by build digest: installed builds, and the one being installed
        self._lock = threading.RLock()  # the daemon asks from several threads: one index made once

    def __repr__(self) -> str:
        return f"State(path={str(self.path)!r})"

    def close(self) -> None:
        self._db.close()

    def installs(self) -> list[Install]:
        """Every install; its build's index is read only when asked for (`Install.build`)."""
        rows = self._db.execute("SELECT game, dir, version, digest FROM installs ORDER BY game").fetchall()
        return [Install(g, longpath.extended(Path(d)), v, h, self) for g, d, v, h in rows]

    def index(self, digest: str) -> BuildIndex:
        """The index of an installed build: once per process, from the one kept in client.db (0.25 CPU s at 100 GB),
        or made from the install's manifest and kept (once: installs recorded before indexes were kept, or a
        damaged one)."""
        with self._lock:
            found = self._indexes.get(digest)
            if found is None:
                found = self._indexes[digest] = self._kept_index(digest)
            return found

    def _kept_index(self, digest: str) -> BuildIndex:
        from shared.build_index import BuildIndex

        try:
            with self._file(digest, _INDEX).open("rb") as kept:
                return BuildIndex.read(kept)  # a column at a time: no 67 MB blob beside the index at 100 GB
        except FileNotFoundError:
            legacy = self.build_index(digest)  # kept in client.db by an earlier Mist
            try:
                if legacy is not None:
                    return BuildIndex.from_bytes(legacy)
            except ValueError:
                pass
        except ValueError:
            pass  # damaged, or copied from a machine of the other byte order: made again and kept anew
        data = self._manifest_of(digest)
        if data is None:
            raise KeyError(f"no install of build {digest[:12]} is recorded")
        made = BuildIndex.scan(data)  # verified when it was installed
        self._keep(digest, made)
        return made

    def index_of(self, digest: str, data: bytes | Path, held: tuple[str, bytes] | None = None) -> BuildIndex:
        """The index of a build's manifest (bytes, or a file of them), already checked against `digest` and the
        tracker's signature: made from the held build's index when there is one (only the file entries that
        differ are read: see BuildIndex.following), else scanned. Kept in this process for `record` to keep."""
        from shared.build_index import BuildIndex

        with self._lock:
            found = self._indexes.get(digest)
        if found is not None:
            return found
        if self._db.execute("SELECT 1 FROM installs WHERE digest = ?", (digest,)).fetchone():
            return self.index(digest)  # installed here already (a reinstall, a repair, another folder)
        if isinstance(data, Path):
            data = data.read_bytes()
        base = None
        if held is not None and held[0] != digest:
            try:
                base = (self.index(held[0]), held[1])
            except KeyError:
                pass
        made = BuildIndex.following_or_scan(data, base)
        with self._lock:
            return self._indexes.setdefault(digest, made)

    def made_index(self, digest: str) -> BuildIndex | None:
        """The index of a build this process made (`index_of`, `index_rebuilt`) and has not recorded yet."""
        with self._lock:
            return self._indexes.get(digest)

    def index_rebuilt(self, digest: str, held: str, rebuilt: Rebuilt, path: Path) -> BuildIndex:
        """The index of the manifest a delta of entries rebuilt into `path` from the held build's (checked against
        `digest` and the tracker's signature), made from the held build's index and where the new bytes came from
        (BuildIndex.from_rebuilt): neither manifest is read. Scanned from `path` where that does not fit."""
        from shared.build_index import BuildIndex

        try:
            base = self.index(held)
        except KeyError:
            base = None
        made = BuildIndex.rebuilt_or_scanned(base, rebuilt, path)
        with self._lock:
            return self._indexes.setdefault(digest, made)

    def incoming_manifest(self, digest: str) -> Path:
        """A file of its own to rebuild a fetched manifest into (two processes may fetch the same build at once);
        its fetcher removes it when done, and a crash's leftover goes with the next `record` (`_sweep_incoming`)."""
        self._builds.mkdir(exist_ok=True)
        self._file(digest, _MANIFEST)  # a digest, not a path
        return self._builds / f"{digest}.{_MANIFEST}.{os.getpid()}-{secrets.token_hex(4)}{_INCOMING}"

    def held_manifest_file(self, game: str) -> tuple[str, Path] | None:
        """The digest and kept manifest file of the build of `game` installed here, when it is kept as a file (a
        delta of entries is applied from it without reading it whole); None otherwise."""
        row = self._db.execute("SELECT digest, length(manifest) FROM installs WHERE game = ?", (game,)).fetchone()
        if row is None or row[1]:
            return None
        path = self._file(row[0], _MANIFEST)
        return (row[0], path) if path.is_file() else None

    def _file(self, digest: str, kind: str) -> Path:
        if not _DIGEST.match(digest):
            raise KeyError(f"{digest!r} is not a build digest")
        return self._builds / f"{digest}.{kind}"

    def build_index(self, digest: str) -> bytes | None:
        """The compact index kept for an installed build (shared/build_index.py), if one was kept: a file in
        builds/ (an index kept in client.db by an earlier Mist is still read)."""
        try:
            return self._file(digest, _INDEX).read_bytes()
        except FileNotFoundError:
            pass
        row = self._db.execute("SELECT data FROM build_indexes WHERE digest = ?", (digest,)).fetchone()
        return bytes(row[0]) if row else None

    def keep_build_index(self, digest: str, data: bytes) -> None:
        """Keep an installed build's index."""
        self._builds.mkdir(exist_ok=True)
        write_atomic(self._file(digest, _INDEX), data)

    def _keep(self, digest: str, index: BuildIndex) -> None:
        """Keep an index as `keep_build_index` would, written a column at a time, with its chunks' use counts
        (the next update's index is made from them; counting takes a second at 100 GB, an index made from the
        held one has them already)."""
        index.use_counts()
        self._builds.mkdir(exist_ok=True)
        path = self._file(digest, _INDEX)
        part = path.with_name(path.name + ".tmp")
        with part.open("wb") as out:
            index.write(out)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.replace(part, path)
        except PermissionError:  # Windows: another process is reading the one there; it is a cache, made again later
            part.unlink(missing_ok=True)
            return
        sync_directory(path.parent)

    def _manifest_of(self, digest: str) -> bytes | None:
        row = self._db.execute("SELECT manifest FROM installs WHERE digest = ? LIMIT 1", (digest,)).fetchone()
        return None if row is None else self._manifest_bytes(digest, bytes(row[0]))

    def _manifest_bytes(self, digest: str, column: bytes) -> bytes:
        """An install's manifest: in builds/ (the column is empty), or in the column where an earlier Mist kept it."""
        if column:
            return column
        path = self._file(digest, _MANIFEST)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise RecordLost(
                f"the manifest Mist keeps for an installed build ({path}) is gone; `mist verify` (or the next install "
                "or update) fetches it again from the tracker"
            ) from None

    def lost(self) -> list[Install]:
        """Installs whose kept manifest is gone (MIST_HOME/builds cleaned by hand, a disk fault): the installer
        puts the signed bytes back from the tracker (`restore_manifest`) before it reads any install."""
        rows = self._db.execute("SELECT game, dir, version, digest, length(manifest) FROM installs ORDER BY game")
        return [
            Install(g, longpath.extended(Path(d)), v, h, self)
            for g, d, v, h, kept in rows.fetchall()
            if not kept and not self._file(h, _MANIFEST).exists()
        ]

    def restore_manifest(self, digest: str, data: bytes) -> None:
        """Keep an install's manifest again: `data` is the tracker's, checked against its signature and `digest`."""
        self._builds.mkdir(exist_ok=True)
        write_atomic(self._file(digest, _MANIFEST), data)

    def held_manifest(self, game: str) -> tuple[str, bytes] | None:
        """The digest and manifest bytes of the build of `game` installed here (what a manifest delta starts from);
        None if none is, or its kept manifest is gone (the manifest then comes whole)."""
        row = self._db.execute("SELECT digest, manifest FROM installs WHERE game = ?", (game,)).fetchone()
        try:
            return (row[0], self._manifest_bytes(row[0], bytes(row[1]))) if row else None
        except RecordLost:
            return None

    def held_for_delta(self, game: str) -> tuple[str, bytes | Path] | None:
        """What a manifest delta for `game` starts from: the kept manifest file of the build installed here (a
        delta of entries is applied from it without reading it whole), else its bytes; None if none is held."""
        return self.held_manifest_file(game) or self.held_manifest(game)

    def installed_versions(self) -> dict[str, tuple[str, Path]]:
        """game -> (version, folder), without parsing any manifest (for `mist ls`)."""
        rows = self._db.execute("SELECT game, version, dir FROM installs").fetchall()
        return {g: (v, Path(d)) for g, v, d in rows}

    def get(self, game: str) -> Install | None:
        """One game's install (its build's index is read only when asked for)."""
        row = self._db.execute("SELECT game, dir, version, digest FROM installs WHERE game = ?", (game,)).fetchone()
        if row is None:
            return None
        g, d, v, h = row
        return Install(g, longpath.extended(Path(d)), v, h, self)

    def record(self, game: str, directory: Path, manifest: bytes | Path, digest: str, version: str) -> None:
        """The install of a build: its manifest (bytes, or a file of them: copied a piece at a time) and index (if
        this process made it) kept as files in builds/, where writing them costs a tenth of the CPU a 100 MB blob
        in SQLite does, so no later process makes it again."""
        self._builds.mkdir(exist_ok=True)
        kept = self._file(digest, _MANIFEST)
        # A build installed here already (a repair, a reinstall, another folder) has both kept: not written again
        # (124 MB and 72 MB, fsynced, at 100 GB); an index found damaged was made and kept again when it was read.
        again = bool(self._db.execute("SELECT 1 FROM installs WHERE digest = ?", (digest,)).fetchone())
        if not (again and _holds(kept, digest)):  # one damaged on disk is written again (a repair heals it)
            if isinstance(manifest, Path):
                link_or_copy_atomic(manifest, kept)
            else:
                write_atomic(kept, manifest)
        self._sweep_incoming()
        with self._lock:
            made = self._indexes.get(digest)
        if made is not None and not (again and self._file(digest, _INDEX).is_file()):
            self._keep(digest, made)
        before = self._db.execute("SELECT digest FROM installs WHERE game = ?", (game,)).fetchone()
        self._db.execute(
            "INSERT OR REPLACE INTO installs (game, dir, version, digest, manifest, installed_at) VALUES (?,?,?,?,?,?)",
            (game, str(longpath.plain(directory)), version, digest, b"", time.time()),
        )
        if before is not None and before[0] != digest:
            self._drop_unused(before[0])

    def _sweep_incoming(self) -> None:
        """Remove fetched manifests a crashed process left (a day old: one being fetched now is minutes old)."""
        cutoff = time.time() - INCOMING_KEPT
        for leftover in self._builds.glob(f"*{_INCOMING}"):
            try:
                if leftover.stat().st_mtime < cutoff:
                    leftover.unlink()
            except OSError:
                pass  # gone already, or in use on Windows: the next record tries again

    def forget(self, game: str) -> None:
        before = self._db.execute("SELECT digest FROM installs WHERE game = ?", (game,)).fetchone()
        self._db.execute("DELETE FROM installs WHERE game = ?", (game,))
        self._db.execute("DELETE FROM file_stats WHERE game = ?", (game,))
        if before is not None:
            self._drop_unused(before[0])

    def _drop_unused(self, digest: str) -> None:
        """Drop what is kept of a build no install has any more (only that one: a build another process is
        recording now has its files written before its row, and must not be swept away)."""
        if self._db.execute("SELECT 1 FROM installs WHERE digest = ?", (digest,)).fetchone():
            return
        self._db.execute("DELETE FROM build_indexes WHERE digest = ?", (digest,))
        with self._lock:
            self._indexes.pop(digest, None)
        for kind in (_MANIFEST, _INDEX):
            try:
                self._file(digest, kind).unlink(missing_ok=True)
            except OSError:
                pass  # Windows: another process has it open; a later update or uninstall of that build drops it

    def record_stats(self, game: str, digest: str, stats: FileStats) -> None:
        """The size and time of each file of the install as Mist wrote it: a file that differs now is not ours
        any more (a friend changed or replaced it), and Mist never deletes it."""
        blob = zlib.compress(json.dumps(stats, separators=(",", ":")).encode(), 1)
        self._db.execute("INSERT OR REPLACE INTO file_stats (game, digest, stats) VALUES (?,?,?)", (game, digest, blob))

    def stats(self, game: str, digest: str) -> FileStats | None:
        """What `record_stats` kept for this install of `digest`; None for an install recorded before it existed."""
        row = self._db.execute("SELECT stats FROM file_stats WHERE game = ? AND digest = ?", (game, digest)).fetchone()
        if row is None:
            return None
        return {path: (int(size), int(mtime)) for path, (size, mtime) in json.loads(zlib.decompress(row[0])).items()}
