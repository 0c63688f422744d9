"""The client's record of what is installed where (SQLite in MIST_HOME).

The install directory's own journal is the truth during a swap; this database
is updated when a swap completes, so it always names a build that is fully on disk.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from shared import manifest as manifest_mod
from shared.manifest import Manifest

SCHEMA = """
CREATE TABLE IF NOT EXISTS installs (
    game TEXT PRIMARY KEY,
    dir TEXT NOT NULL,
    version TEXT NOT NULL,
    digest TEXT NOT NULL,
    manifest BLOB NOT NULL,
    installed_at REAL NOT NULL
);
"""


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

    def __repr__(self) -> str:
        return f"State(path={str(self.path)!r})"

    def close(self) -> None:
        self._db.close()

    def installs(self) -> list[Install]:
        rows = self._db.execute("SELECT game, dir, version, digest, manifest FROM installs ORDER BY game").fetchall()
        return [Install(g, Path(d), v, h, manifest_mod.parse(m)) for g, d, v, h, m in rows]

    def get(self, game: str) -> Install | None:
        return next((i for i in self.installs() if i.game == game), None)

    def record(self, game: str, directory: Path, manifest_bytes: bytes, digest: str, version: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO installs (game, dir, version, digest, manifest, installed_at) VALUES (?,?,?,?,?,?)",
            (game, str(directory), version, digest, manifest_bytes, time.time()),
        )

    def forget(self, game: str) -> None:
        self._db.execute("DELETE FROM installs WHERE game = ?", (game,))
