"""`mist-admin restore`: a backup made by `mist-admin backup` into a new data directory, checked as it goes.

Before anything is written the backup is read whole: its `backup.json`
(missing: the backup never finished), the dump's checksum, and that every
object the dump names is there. Then each object is hashed as it is copied,
the data directory's files are put back (0600), and the dump is loaded and
migrated to this Mist's schema. A marker file in the data directory stays
until the end, so a server refuses to start on half a restore, and running
the restore again carries on.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.chunkstore import ChunkStore, DirectoryChunkStore, StoreSettings
from shared.durable import sync_directory
from shared.errors import StoreError
from shared.storecopy import copy_all
from tracker import datalock
from tracker.backups.directory import (
    FORMAT,
    MANIFEST,
    VERSION,
    BackupCorrupt,
    BackupError,
    BackupIncomplete,
    now_iso,
    read_needs,
    write_private,
)
from tracker.backups.unfinished_restore import MARKER as RESTORE_MARKER
from tracker.db import dump as dump_mod
from tracker.db.engine import database_url

SQLITE_FILES = ("tracker.db", "tracker.db-wal", "tracker.db-shm", "tracker.db-journal")
SHOWN = 5


@dataclass
class RestoreReport:
    data: str
    backup_created_at: str = ""
    database: str = ""
    revision_from: str = ""
    revision_to: str = ""
    rows: dict[str, int] = field(default_factory=dict)
    games: int = 0
    builds: int = 0
    objects: int = 0
    objects_copied: int = 0
    bytes_copied: int = 0
    files: list[str] = field(default_factory=list)
    patches_missing: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, object]:
        return dict(self.__dict__)


def read_manifest(source: Path) -> dict[str, Any]:
    """The backup's `backup.json`, or an error that says what state the backup is in and what to do."""
    if not source.is_dir():
        raise BackupError(f"there is no backup at {source}")
    path = source / MANIFEST
    if not path.exists():
        runs = sorted(p.name for p in (source / "runs").iterdir()) if (source / "runs").is_dir() else []
        if runs:
            raise BackupIncomplete(
                f"{source} holds a backup that did not finish (started {runs[-1]}): its {MANIFEST}, written last, "
                f"is missing, so it may lack objects. Run `mist-admin backup {source}` again (it copies only what is "
                "missing), or restore another copy"
            )
        raise BackupError(f"{source} is not a Mist backup (it has no {MANIFEST}); name the directory `mist-admin backup` wrote")
    try:
        manifest = json.loads(path.read_bytes())
    except ValueError:
        manifest = None
    if isinstance(manifest, dict) and manifest.get("format") == FORMAT and manifest.get("version") != VERSION:
        raise BackupError(
            f"{path} is a backup of format version {manifest.get('version')!r}; this Mist restores "
            f"version {VERSION}: use the Mist version that made the backup"
        )
    if not _well_formed(manifest) or manifest.get("format") != FORMAT:
        raise BackupCorrupt(f"{path} is damaged (not the JSON a backup writes); restore another copy of the backup")
    return manifest  # type: ignore[no-any-return]  # _well_formed checked its shape


def _well_formed(manifest: Any) -> bool:
    return (
        isinstance(manifest, dict)
        and all(k in manifest for k in ("format", "version", "run", "files", "created_at", "builds", "games"))
        and isinstance(manifest.get("database"), dict)
        and all(k in manifest["database"] for k in ("file", "sha256", "bytes", "revision"))
        and isinstance(manifest.get("objects"), dict)
        and "count" in manifest["objects"]
    )


def _sha256(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _check(source: Path, manifest: dict[str, Any]) -> tuple[Path, list[str]]:
    """The dump file and the objects to copy, once the backup holds all of them; nothing is written yet."""
    damaged = "restore another copy of the backup, or make a new one with `mist-admin backup` if the server still runs"
    dump_path = source / manifest["database"]["file"]
    if not dump_path.is_file():
        raise BackupIncomplete(f"the backup's database dump {dump_path} is missing; {damaged}")
    if _sha256(dump_path) != (manifest["database"]["sha256"], manifest["database"]["bytes"]):
        raise BackupCorrupt(f"the backup's database dump {dump_path} does not match the checksum in {MANIFEST}; {damaged}")
    for rel, sha in manifest["files"].items():
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            raise BackupCorrupt(f"{MANIFEST} names a file outside the data directory ({rel!r}); {damaged}")
        path = source / manifest["run"] / "files" / rel
        if not path.is_file() or _sha256(path)[0] != sha:
            raise BackupCorrupt(f"the backup's file {path} is missing or does not match its checksum; {damaged}")
    needs = read_needs(dump_path)
    absent = set(manifest.get("patches_missing", []))  # missing on the server already: friends get chunks instead
    names = [n for n in needs.objects if n not in absent]
    if len(needs.objects) != manifest["objects"]["count"]:
        raise BackupCorrupt(
            f"the dump names {len(needs.objects)} objects but {MANIFEST} says {manifest['objects']['count']}; {damaged}"
        )
    store = DirectoryChunkStore(source / "store", durable=False)
    lacking = [n for n in names if not store.has(n)]
    if lacking:
        raise BackupIncomplete(
            f"{len(lacking)} of the backup's {len(names)} objects are missing from {source / 'store'} "
            f"(e.g. {', '.join(n[:12] for n in lacking[:SHOWN])}); {damaged}"
        )
    return dump_path, names


def restore(
    source: Path,
    data: Path,
    configured_url: str = "",
    force: bool = False,
    on_object: Callable[[str], None] | None = None,
    store: StoreSettings | None = None,
) -> RestoreReport:
    """Restore the backup in `source` into the data directory `data` (and the database MIST_DATABASE_URL names,
    if set); refuses a directory or database that holds anything, unless `force`. The objects go to `store`
    when the new server keeps them elsewhere than its data directory's `store/` (an S3 bucket)."""
    started = time.monotonic()
    source, data = source.resolve(), data.resolve()
    manifest = read_manifest(source)
    dump_path, names = _check(source, manifest)
    with datalock.held(data, "restore"):  # no tracker serves the directory while it is replaced
        return _restore_held(
            source, data, store or StoreSettings(), manifest, dump_path, names, configured_url, force, on_object, started
        )


def _restore_held(
    source: Path,
    data: Path,
    store_settings: StoreSettings,
    manifest: dict[str, Any],
    dump_path: Path,
    names: list[str],
    configured_url: str,
    force: bool,
    on_object: Callable[[str], None] | None,
    started: float,
) -> RestoreReport:
    marker = data / RESTORE_MARKER
    carrying_on = marker.exists()
    if not force and not carrying_on:
        held = sorted(p.name for p in data.iterdir() if p.name != datalock.LOCK_FILE)
        if held:
            raise BackupError(
                f"{data} is not empty (it holds {', '.join(held[:SHOWN])}); restore into a new directory, "
                "or pass --force to replace its database, keys and secrets"
            )
    url = database_url(data, configured_url)
    in_data = url == f"sqlite:///{data / 'tracker.db'}"  # else the database lives elsewhere: look inside it
    if not in_data and not force and not carrying_on:
        held_tables = dump_mod.tables_in(url)
        if held_tables:
            raise BackupError(
                f"the database at {dump_mod.shown(url)} already holds tables "
                f"({', '.join(held_tables[:SHOWN])}); restore into an empty database, or pass --force "
                "to replace what it holds"
            )
    report = RestoreReport(str(data), manifest["created_at"], dump_mod.shown(url), manifest["database"]["revision"])
    try:
        data.mkdir(parents=True, exist_ok=True)
        os.chmod(data, 0o700)
        write_private(marker, json.dumps({"backup": str(source), "started": now_iso()}).encode())
        store = store_settings.open(data / "store", durable=False)  # after the checks: it may make the folder
        _copy_objects(source, data, store, names, report, on_object)
        for rel in manifest["files"]:
            (data / rel).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_private(data / rel, (source / manifest["run"] / "files" / rel).read_bytes())
            report.files.append(rel)
        if in_data:
            for name in SQLITE_FILES:  # a forced or carried-on restore starts the database afresh
                (data / name).unlink(missing_ok=True)
        with open(dump_path, "rb") as f:
            loaded = dump_mod.load(url, iter(f), force=force or carrying_on)
        os.sync()
        marker.unlink()
        sync_directory(data)
    except (StoreError, OSError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise BackupError(
            f"the restore into {data} stopped ({why}); fix that, then run the same command again: it carries on"
        ) from exc
    report.revision_to, report.rows = dump_mod.head_revision(), loaded.rows
    report.games, report.builds = manifest["games"], len(manifest["builds"])
    report.objects, report.patches_missing = len(names), len(manifest.get("patches_missing", []))
    report.seconds = round(time.monotonic() - started, 3)
    return report


def _copy_objects(
    source: Path, data: Path, store: ChunkStore, names: list[str], report: RestoreReport, on_object: Callable[[str], None] | None
) -> None:
    copied = copy_all(DirectoryChunkStore(source / "store", durable=False), store, names, recheck=True, on_object=on_object)
    if copied.corrupt:
        why = next(iter(copied.corrupt.values()))
        raise BackupCorrupt(
            f"{len(copied.corrupt)} of the backup's objects are damaged ({why}; in {source / 'store'}): this backup "
            f"cannot be restored whole. Restore another copy of it (off-site), or make a new backup with "
            f"`mist-admin backup` if the server still runs. {data} is not usable until a restore finishes"
        )
    if copied.missing:
        raise BackupIncomplete(
            f"{len(copied.missing)} of the backup's objects vanished from {source / 'store'} while "
            "restoring; check that nothing else is changing the backup, then run the same command again"
        )
    report.objects_copied, report.bytes_copied = copied.copied, copied.bytes_copied
