"""The client's record of what is installed where (SQLite in MIST_HOME).

The install directory's own journal is the truth during a swap; this database
is updated when a swap completes, so it always names a build that is fully on disk.
"""

from __future__ import annotations

import json
import sqlite3
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from client import longpath

if TYPE_CHECKING:
    from shared.manifest import Manifest  # parsed on first use: `mist ls` reads versions only

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

FileStats = dict[str, tuple[int, int]]  # path -> (size, mtime in ns) of each file as Mist left it


@dataclass(frozen=True)
class Install:
    game: str
    dir: Path
    version: str
    digest: str
    manifest: Manifest


class State:
    def __init__(self, home: Path) -> None:
        self.path = home / "client.db"
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.executescript(SCHEMA)
        self._parsed: dict[str, Manifest] = {}  # by digest, so a changed install is simply another key

    def __repr__(self) -> str:
        return f"State(path={str(self.path)!r})"

    def close(self) -> None:
        self._db.close()

    def installs(self) -> list[Install]:
        """Every install, each manifest parsed once per process: a big game's manifest takes seconds to parse."""
        rows = self._db.execute("SELECT game, dir, version, digest FROM installs ORDER BY game").fetchall()
        return [Install(g, longpath.extended(Path(d)), v, h, self._manifest(h)) for g, d, v, h in rows]

    def _manifest(self, digest: str) -> Manifest:
        manifest = self._parsed.get(digest)
        if manifest is None:
            from shared import manifest as manifest_mod

            (data,) = self._db.execute("SELECT manifest FROM installs WHERE digest = ? LIMIT 1", (digest,)).fetchone()
            manifest = self._parsed[digest] = manifest_mod.parse(data)
        return manifest

    def installed_manifests(self) -> list[tuple[str, Path, str, bytes]]:
        """(game, folder, digest, manifest bytes) of every install, parsing none: they were verified when installed."""
        rows = self._db.execute("SELECT game, dir, digest, manifest FROM installs ORDER BY game").fetchall()
        return [(g, longpath.extended(Path(d)), h, bytes(m)) for g, d, h, m in rows]

    def build_index(self, digest: str) -> bytes | None:
        """The compact index kept for an installed build (shared/build_index.py), if one was kept."""
        row = self._db.execute("SELECT data FROM build_indexes WHERE digest = ?", (digest,)).fetchone()
        return bytes(row[0]) if row else None

    def keep_build_index(self, digest: str, data: bytes) -> None:
        """Keep an installed build's index, and drop those of builds no longer installed."""
        self._db.execute("INSERT OR REPLACE INTO build_indexes (digest, data) VALUES (?, ?)", (digest, data))
        self._db.execute("DELETE FROM build_indexes WHERE digest NOT IN (SELECT digest FROM installs)")

    def held_manifest(self, game: str) -> tuple[str, bytes] | None:
        """The digest and manifest bytes of the build of `game` installed here (what a manifest delta starts from)."""
        row = self._db.execute("SELECT digest, manifest FROM installs WHERE game = ?", (game,)).fetchone()
        return (row[0], bytes(row[1])) if row else None

    def installed_versions(self) -> dict[str, tuple[str, Path]]:
        """game -> (version, folder), without parsing any manifest (for `mist ls`)."""
        rows = self._db.execute("SELECT game, version, dir FROM installs").fetchall()
        return {g: (v, Path(d)) for g, v, d in rows}

    def get(self, game: str) -> Install | None:
        """One game's install, parsing only its manifest (`mist verify` of one game need not parse every other's)."""
        row = self._db.execute("SELECT game, dir, version, digest FROM installs WHERE game = ?", (game,)).fetchone()
        if row is None:
            return None
        g, d, v, h = row
        return Install(g, longpath.extended(Path(d)), v, h, self._manifest(h))

    def record(self, game: str, directory: Path, manifest_bytes: bytes, digest: str, version: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO installs (game, dir, version, digest, manifest, installed_at) VALUES (?,?,?,?,?,?)",
            (game, str(longpath.plain(directory)), version, digest, manifest_bytes, time.time()),
        )

    def forget(self, game: str) -> None:
        self._db.execute("DELETE FROM installs WHERE game = ?", (game,))
        self._db.execute("DELETE FROM file_stats WHERE game = ?", (game,))

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
