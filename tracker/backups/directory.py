"""A backup directory: its layout, its errors, and which objects its database dump names.

DIR/backup.json                  what the backup holds, written last: without it the backup is unfinished
DIR/.lock                        held while a backup writes
DIR/runs/<time>/database.jsonl   the dump (tracker/db/dump.py)
DIR/runs/<time>/files/           signing key, JWT secret, archived keys (0600)
DIR/store/ab/cd/<sha256>         objects, laid out as in the server's store
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from shared import manifest as manifest_mod
from shared.durable import sync_directory
from shared.errors import ManifestError
from tracker.backups.unfinished_restore import MARKER as RESTORE_MARKER
from tracker.datalock import LOCK_FILE
from tracker.db import dump as dump_mod
from tracker.errors import TrackerError

FORMAT = "mist-backup"
VERSION = 1
MANIFEST = "backup.json"
LOCK = ".lock"
DUMP = "database.jsonl"
# Files of the data directory that are not secrets: the SQLite database and the job queue (the database is dumped;
# the queue's jobs are made again: patches by the next plan or push, the scrub and collection nightly), and the
# running tracker's lock.
NOT_FILES = ("tracker.db", "jobs.db", LOCK_FILE)


class BackupError(TrackerError):
    """A backup could not be made, or a backup cannot be restored; the message says what to do."""


class BackupIncomplete(BackupError):
    """The backup did not finish, or lacks part of what it lists."""


class BackupCorrupt(BackupError):
    """Part of the backup does not match its checksum or name: use another copy."""


def now_iso(clock: Callable[[], float] = time.time) -> str:
    return datetime.fromtimestamp(clock(), timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


# What a dump needs from the store


@dataclass
class Needs:
    """The objects a database dump names, by kind, and what it holds."""

    objects: dict[str, str] = field(default_factory=dict)  # name -> "manifest" | "chunk" | "patch"
    games: dict[int, str] = field(default_factory=dict)
    builds: list[str] = field(default_factory=list)  # "game version"

    def observe(self, table: str, row: Mapping[str, Any]) -> None:
        if table == "games":
            self.games[row["id"]] = row["slug"]
        elif table == "builds":
            self.builds.append(f"{self.games.get(row['game_id'], '?')} {row['version']}")
            try:
                parsed = manifest_mod.parse(bytes(row["manifest"]))
            except ManifestError as exc:
                raise BackupError(
                    f"build {self.builds[-1]}'s stored manifest does not parse ({exc}); "
                    "remove the build (`mistpipe rm`) or push it again, then back up"
                ) from exc
            self.objects[row["manifest_digest"]] = "manifest"
            for name in parsed.chunk_sizes():
                self.objects.setdefault(name, "chunk")
        elif table == "patches" and row["object_sha"]:
            self.objects.setdefault(row["object_sha"], "patch")

    def count(self, kind: str) -> int:
        return sum(1 for k in self.objects.values() if k == kind)


def read_needs(dump_path: Path) -> Needs:
    """The objects a dump file names (a restore checks the backup against them)."""
    needs = Needs()
    with open(dump_path, "rb") as f:
        lines = iter(f)
        dump_mod.read_header(lines)
        for table, row in dump_mod.rows(lines):
            needs.observe(table, row)
    return needs


def builds_needing(dump_path: Path, names: set[str]) -> list[str]:
    """Which builds of a dump have one of these objects ("game version (3 objects)"), for messages."""
    games: dict[int, str] = {}
    found = []
    with open(dump_path, "rb") as f:
        lines = iter(f)
        dump_mod.read_header(lines)
        for table, row in dump_mod.rows(lines):
            if table == "games":
                games[row["id"]] = row["slug"]
            elif table == "builds":
                parsed = manifest_mod.parse(bytes(row["manifest"]))
                lost = len(names & ({row["manifest_digest"]} | set(parsed.chunk_sizes())))
                if lost:
                    found.append(f"{games.get(row['game_id'], '?')} {row['version']} ({lost} objects)")
    return found


# Files


def write_private(path: Path, data: bytes) -> None:
    """Write a file only its owner can read, whole or not at all, and on disk before returning."""
    tmp = path.with_name(f".tmp-{path.name}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    sync_directory(path.parent)


def data_files(data: Path) -> Iterator[Path]:
    """The data directory's own files (signing key, JWT secret, archived keys), relative to it."""
    for dirpath, dirnames, filenames in os.walk(data):
        here = Path(dirpath)
        if here == data:
            dirnames[:] = [d for d in dirnames if d != "store"]
        for name in sorted(filenames):
            if here == data and (name.startswith(NOT_FILES) or name == RESTORE_MARKER):
                continue
            yield (here / name).relative_to(data)
