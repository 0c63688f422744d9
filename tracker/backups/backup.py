"""`mist-admin backup`: a consistent copy of a running server's database, store and secrets.

The database is dumped first, from one snapshot; then every object that
snapshot names (each build's manifest and chunks, each recorded patch) is
copied and checked, so everything the dump needs exists in the backup. A
build committed after the snapshot is simply not in it. The garbage
collector's grace period keeps what a build pushed meanwhile relies on, but
not the objects of a build removed after the snapshot: an object that has
gone by the time it is copied makes the backup take a new snapshot, which no
longer needs it. `backup.json` is written last, so a backup that died midway
has none and a restore refuses it; until then the previous backup in the
same directory stays whole. The layout is in tracker/backups/directory.py.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import IO

from shared.chunkstore import ChunkStore, DirectoryChunkStore, StoreSettings
from shared.errors import StoreError
from shared.storecopy import CopyReport, copy_all
from tracker.backups.directory import (
    DUMP,
    FORMAT,
    LOCK,
    MANIFEST,
    VERSION,
    BackupError,
    Needs,
    builds_needing,
    data_files,
    now_iso,
    write_private,
)
from tracker.db import dump as dump_mod
from tracker.db.engine import database_url

ATTEMPTS = 3  # snapshots before objects still missing are the server's loss, not a collection's


class _Hashing:
    """A file writer that hashes what passes through."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f, self.sha256, self.size = f, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.f.write(data)


def _prepare(target: Path, data: Path) -> None:
    if target == data or data in target.parents or target in data.parents:
        raise BackupError(
            f"the backup directory {target} and the data directory {data} must not contain each other; "
            "choose a backup directory elsewhere (another disk is best)"
        )
    if target.exists() and any(target.iterdir()) and not any((target / n).exists() for n in (MANIFEST, "runs", "store")):
        raise BackupError(f"{target} is not empty and holds no Mist backup; choose an empty directory or an earlier backup's")
    target.mkdir(parents=True, exist_ok=True)
    os.chmod(target, 0o700)


@dataclass
class BackupReport:
    directory: str
    created_at: str = ""
    revision: str = ""
    dialect: str = ""
    games: int = 0
    builds: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    objects: int = 0
    object_bytes: int = 0
    objects_copied: int = 0
    bytes_copied: int = 0
    objects_pruned: int = 0
    patches_missing: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    database_bytes: int = 0
    snapshots: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, object]:
        return dict(self.__dict__)


def backup(
    data: Path,
    target: Path,
    configured_url: str = "",
    recheck: bool = False,
    after_snapshot: Callable[[], None] | None = None,
    on_object: Callable[[str], None] | None = None,
    say: Callable[[str], None] = lambda message: None,
    clock: Callable[[], float] = time.time,
    store: StoreSettings | None = None,
) -> BackupReport:
    """Back up the server whose data directory is `data` into `target`, while it runs.

    `store` says where the server's chunk store is when it is not the data directory's `store/` (an S3
    bucket); the backup's own copy is always a folder in `target`.

    `after_snapshot` runs between the dump and the copy, and `on_object` after each object (tests push, collect
    and interrupt there); `say` hears progress for people. `recheck` hashes the objects `target` already has
    instead of trusting their names.
    """
    data, target = data.resolve(), target.resolve()
    settings = store or StoreSettings()
    looks_like_data = data.is_dir() if settings.url else (data / "store").is_dir()  # a bucket leaves no store/
    if not looks_like_data:
        raise BackupError(f"{data} is not a Mist data directory (it has no store/); pass --data the server's data directory")
    source = settings.open(data / "store")
    started = time.monotonic()
    try:
        _prepare(target, data)
        with _locked(target):
            report = _run(data, source, target, configured_url, recheck, after_snapshot, on_object, say, clock)
    except (StoreError, OSError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        where = f" ({exc.filename})" if isinstance(exc, OSError) and exc.filename else ""
        raise BackupError(
            f"the backup into {target} stopped: {why}{where}; fix that (free space, permissions) and "
            "run the same command again: it copies only what is not there yet"
        ) from exc
    report.seconds = round(time.monotonic() - started, 3)
    return report


@contextmanager
def _locked(target: Path) -> Iterator[None]:
    """One backup into a directory at a time: each prunes what the others would still copy."""
    fd = os.open(target / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise BackupError(f"another backup into {target} is running; wait for it to finish") from exc
        yield
    finally:
        os.close(fd)


def _run(
    data: Path,
    source: ChunkStore,
    target: Path,
    configured_url: str,
    recheck: bool,
    after_snapshot: Callable[[], None] | None,
    on_object: Callable[[str], None] | None,
    say: Callable[[str], None],
    clock: Callable[[], float],
) -> BackupReport:
    """Dump, copy what the dump names (dumping again if a collection took some of it), then write backup.json."""
    report = BackupReport(str(target))
    run = Path("runs") / datetime.fromtimestamp(clock(), timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    (target / run / "files").mkdir(parents=True, mode=0o700)
    url = database_url(data, configured_url)
    store = DirectoryChunkStore(target / "store", durable=False)
    for attempt in range(1, ATTEMPTS + 1):
        report.snapshots = attempt
        report.created_at = now_iso(clock)
        needs = Needs()
        with open(target / run / f"{DUMP}.tmp", "wb") as f:
            out = _Hashing(f)
            summary = dump_mod.dump(url, out, needs.observe)  # type: ignore[arg-type]  # _Hashing writes like the file it wraps
        os.replace(target / run / f"{DUMP}.tmp", target / run / DUMP)
        say(
            f"Dumped the database as it was at {report.created_at} ({sum(summary.rows.values())} rows, revision "
            f"{summary.revision}); copying the {len(needs.objects)} objects it names ..."
        )
        if after_snapshot is not None:
            after_snapshot()
        files = _copy_files(data, target / run / "files")
        copied = copy_all(source, store, list(needs.objects), recheck, on_object)
        report.objects_copied += copied.copied
        report.bytes_copied += copied.bytes_copied
        lost = set(copied.missing) | set(copied.corrupt)
        if not lost:
            break
        required = {n for n in lost if needs.objects[n] != "patch"}
        if attempt == ATTEMPTS and required:
            raise BackupError(_lost_message(source, target / run / DUMP, required, copied))
        if attempt == ATTEMPTS:
            report.patches_missing = sorted(lost)
        else:
            say(f"{len(lost)} objects went from the server's store since the dump (a build removed and collected); dumping again")
    report.revision, report.dialect, report.rows = summary.revision, summary.dialect, summary.rows
    report.games, report.builds, report.files = len(needs.games), len(needs.builds), sorted(files)
    report.objects, report.object_bytes, report.database_bytes = len(needs.objects), copied.bytes_total, out.size
    os.sync()  # every object and file on disk before the manifest says the backup is whole
    _write_manifest(target, run, report, out, files, needs, clock)
    report.objects_pruned = _prune(target, run, store, needs)
    return report


def _copy_files(data: Path, into: Path) -> dict[str, str]:
    """Copy the data directory's files (0600); their SHA-256 by relative path."""
    copied = {}
    for rel in data_files(data):
        content = (data / rel).read_bytes()
        (into / rel).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private(into / rel, content)
        copied[rel.as_posix()] = hashlib.sha256(content).hexdigest()
    return copied


def _lost_message(source: ChunkStore, dump_path: Path, required: set[str], copied: CopyReport) -> str:
    builds = builds_needing(dump_path, required)
    damaged = [n for n in required if n in copied.corrupt]
    return (
        f"the server's store ({source.where}) lacks {len(required)} objects its builds need"
        f"{f' ({len(damaged)} of them damaged)' if damaged else ''}: {', '.join(builds[:10]) or 'no build'}. "
        "Run `mistpipe scrub`, push those builds again (`mistpipe push` uploads only what is missing), "
        "then back up again; the previous backup in this directory is untouched"
    )


def _write_manifest(
    target: Path,
    run: Path,
    report: BackupReport,
    dump_out: _Hashing,
    files: dict[str, str],
    needs: Needs,
    clock: Callable[[], float],
) -> None:
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "created_at": report.created_at,
        "finished_at": now_iso(clock),
        "mist_version": _mist_version(),
        "run": run.as_posix(),
        "database": {
            "file": (run / DUMP).as_posix(),
            "sha256": dump_out.sha256.hexdigest(),
            "bytes": dump_out.size,
            "revision": report.revision,
            "dialect": report.dialect,
            "rows": report.rows,
        },
        "files": files,
        "objects": {
            "count": len(needs.objects),
            "bytes": report.object_bytes,
            "manifests": needs.count("manifest"),
            "chunks": needs.count("chunk"),
            "patches": needs.count("patch"),
        },
        "patches_missing": report.patches_missing,
        "games": report.games,
        "builds": needs.builds,
    }
    write_private(target / MANIFEST, json.dumps(manifest, indent=1).encode() + b"\n")


def _prune(target: Path, run: Path, store: DirectoryChunkStore, needs: Needs) -> int:
    """Remove what only earlier backups needed: their runs, and objects this backup does not name."""
    for old in (target / "runs").iterdir():
        if old.name != run.name:
            shutil.rmtree(old, ignore_errors=True)
    pruned = 0
    for name in list(store.names()):
        if name not in needs.objects:
            store.remove(name)
            pruned += 1
    store.sweep_temporary(time.time())
    return pruned


def _mist_version() -> str:
    try:
        return metadata.version("mist")
    except metadata.PackageNotFoundError:
        return "unknown"
