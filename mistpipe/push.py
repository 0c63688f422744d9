"""Pushing a build: chunk locally, upload only the chunks the store lacks, then commit the manifest.

Interrupted at any point, the same push run again asks the store what is
missing and sends only that; the tracker commits a build only when every
chunk is in the store. The commit queues the new build's patches; a push that
waits returns once they are made, so scripts can rely on them.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any

from client import crashpoints
from client.api import Api
from client.errors import ServerRefused
from client.progress import Progress, human
from shared.wording import count
from mistpipe.errors import BuildFolderError, NotConfirmed
from mistpipe.maintenance import wait_for_job
from mistpipe.scan import scan_cached
from mistpipe.scancache import ScanCache
from shared import compression, manifest as manifest_mod, manifest_delta, pack, rawfile
from shared.launch import check_notes, parse_launch
from shared.manifest import VERSION_RE, Manifest

SHRINK_ASKS = 0.5  # a push that drops more than this share of the previous build's files or bytes is confirmed first
UPLOAD_BATCH = 8 * 1024 * 1024
UPLOAD_CHUNKS = 4096
UPLOADS_IN_FLIGHT = 3
MISSING_QUERY = 50_000


@dataclass(frozen=True)
class PushResult:
    version: str
    files: int
    bytes_total: int
    chunks_total: int
    chunks_uploaded: int
    bytes_uploaded: int
    digest: str
    patch_job: str = ""
    patches_coming: int = 0
    patches: dict[str, Any] | None = None  # the patch job's result, when the push waited for it
    warning: str = ""  # the build is in, but something after it was not done (its patches were not queued)
    files_read: int = 0  # files chunked by this push; the others were unchanged since the last one (scancache.py)
    bytes_read: int = 0
    manifest_bytes: int = 0  # sent to commit the build: a delta from the latest build when that is smaller


def _locations(manifest: Manifest, root: Path, wanted: set[str]) -> dict[str, tuple[Path, int, int]]:
    """Where each chunk of `wanted` can be read: (file, offset, size). Only those: a push of a 100 GB build with
    1 GB changed uploads 1% of its 1.6 million chunks."""
    where: dict[str, tuple[Path, int, int]] = {}
    for f in manifest.files:
        if wanted.isdisjoint(map(_hash_of, f.chunks)):
            continue
        for offset, ref in f.offsets():
            if ref.sha256 in wanted:
                where.setdefault(ref.sha256, (root / f.path, offset, ref.size))
    return where


_hash_of = itemgetter(0)


def _read_compressed(location: tuple[Path, int, int], level: int) -> bytes:
    path, offset, size = location
    fd = rawfile.open_fd(path, os.O_RDONLY)
    try:
        data = rawfile.pread(fd, size, offset)
    finally:
        os.close(fd)
    return compression.compress(data, level)


def shrinkage(previous: Manifest, new: Manifest) -> str:
    """What the new build drops of the previous one, in words, when that is most of it; "" when it is not."""
    kept = {f.path for f in new.files} | {e.path for e in new.links}
    dropped = [f for f in previous.files if f.path not in kept]
    before, after = previous.total_size, new.total_size
    if len(dropped) <= SHRINK_ASKS * len(previous.files) and after >= (1 - SHRINK_ASKS) * before:
        return ""
    shown = ", ".join(f.path for f in dropped[:5]) + (", ..." if len(dropped) > 5 else "")
    return (
        f"{new.version} drops {count(len(dropped), 'file')} of the {count(len(previous.files), 'file')} in "
        f"{previous.version} ({human(before)} -> {human(after)})"
        + (f": {shown}" if dropped else "")
        + f"; every friend who updates loses them (and gets the {count(len(new.files), 'file')} of {new.version})"
    )


async def push(
    api: Api,
    game: str,
    root: Path,
    version: str,
    progress: Progress,
    level: int = compression.DEFAULT_LEVEL,
    wait: bool = False,
    notes: str = "",
    launch: str = "",
    confirm: Callable[[str], bool] = lambda why: False,
    cache: ScanCache | None = None,
    rescan: bool = False,
) -> PushResult:
    """Push `root` as `version`. A build that drops most of the latest one goes ahead only if `confirm(why)` says so.

    With a `cache`, only files changed since an earlier push from this machine are read (all of them if `rescan`).
    """
    # Refuse what the tracker would refuse at commit before chunking and uploading a whole game for nothing.
    if not VERSION_RE.match(version):
        raise BuildFolderError(f"version must be like '1.0.2' (letters, digits, '.', '_', '+', '-'; got {version!r})")
    notes = check_notes(notes)
    command = parse_launch(launch) if launch.strip() else None
    info = await api.call("GET", f"/api/games/{game}")  # 404 with its own message if the game does not exist
    progress.say(
        f"Chunking {root} ..."
        if cache is None or rescan
        else f"Chunking what changed in {root} since the last push (--rescan reads every file) ..."
    )
    scanned = await asyncio.to_thread(scan_cached, root, game, version, cache, rescan)
    manifest = scanned.manifest
    if not manifest.files:
        raise BuildFolderError(
            f"{root} holds no files; a build needs at least one (an empty build would empty every "
            "friend's install). Check the folder you meant to push"
        )
    if command is not None and command.program not in {f.path for f in manifest.files}:
        raise BuildFolderError(
            f"--launch starts {command.program!r}, which is not a file in {root}; give the "
            "program's path relative to the build folder, like 'bin/game'"
        )
    latest = info.get("latest")
    previous = b""  # the latest build's manifest, which this one is committed as a delta from
    if latest and latest != version:
        held = cache.last_push(api.creds.url, game) if cache is not None else None
        signed = await api.manifest(game, latest, held)
        previous = signed.data
        why = shrinkage(await asyncio.to_thread(manifest_mod.parse, signed.data), manifest)
        if why and not confirm(why):
            raise NotConfirmed(why, "Nothing was uploaded; if that is what you mean, push again with --yes")
    sizes = manifest.chunk_sizes()
    ticket = await api.call("POST", "/api/upload-ticket")
    hashes = list(sizes)
    missing: list[str] = []
    for i in range(0, len(hashes), MISSING_QUERY):
        missing += await api.missing(ticket["seeder_url"], ticket["ticket"], hashes[i : i + MISSING_QUERY])
    progress.say(f"{count(len(sizes), 'chunk')} in {count(len(manifest.files), 'file')}; {len(missing)} not yet on the server")
    where = await asyncio.to_thread(_locations, manifest, root, set(missing))
    bar = progress.bar("Uploading", sum(sizes[h] for h in missing))
    uploaded = 0
    loop = asyncio.get_running_loop()
    limit = asyncio.Semaphore(UPLOADS_IN_FLIGHT)

    async def send(batch: list[str], pool: ThreadPoolExecutor) -> None:
        nonlocal uploaded
        async with limit:
            blobs = await asyncio.gather(*(loop.run_in_executor(pool, _read_compressed, where[h], level) for h in batch))
            body = pack.encode(pack.Record(pack.CHUNK, h, b) for h, b in zip(batch, blobs))
            await api.seeder(f"{ticket['seeder_url']}/chunks", ticket["ticket"], body, 64 * 1024)  # a small JSON answer
            uploaded += sum(len(b) for b in blobs)
            bar.advance(sum(sizes[h] for h in batch))
            crashpoints.reach("pushed-batch")

    with ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        async with asyncio.TaskGroup() as group:
            for batch in pack.batches(missing, sizes, UPLOAD_BATCH, UPLOAD_CHUNKS):
                group.create_task(send(batch, pool))
    data = manifest.canonical_bytes()
    delta = await asyncio.to_thread(manifest_delta.make, previous, data) if previous else b""
    delta = delta if len(delta) < len(data) else b""
    try:
        try:
            build = await api.commit_build(game, data, notes, launch.strip(), delta)
        except ServerRefused as exc:
            if not delta or exc.status != 400:
                raise
            # A tracker of an older version (or the latest build removed meanwhile): the whole manifest, then.
            delta = b""
            build = await api.commit_build(game, data, notes, launch.strip())
    except ServerRefused as exc:
        raise ServerRefused(exc.status, f"the tracker refused the build: {exc}", exc.detail) from exc
    if cache is not None:
        await asyncio.to_thread(cache.remember_push, api.creds.url, game, build["digest"], data)
    made = None
    if build.get("warning"):
        progress.say(f"Warning: {build['warning']}.")
    elif wait:
        progress.say(f"Making patches into {version} ({build['patches_coming']} changed files to diff) ...")
        made = (await wait_for_job(api, build["patch_job"], True))["result"]
    return PushResult(
        version=version,
        files=len(manifest.files),
        bytes_total=manifest.total_size,
        chunks_total=len(sizes),
        chunks_uploaded=len(missing),
        bytes_uploaded=uploaded,
        digest=build["digest"],
        patch_job=build["patch_job"],
        patches_coming=build["patches_coming"],
        patches=made,
        warning=build.get("warning", ""),
        files_read=scanned.files_read,
        bytes_read=scanned.bytes_read,
        manifest_bytes=len(delta or data),
    )
