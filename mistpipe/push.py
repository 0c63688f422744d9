"""Pushing a build: chunk locally, upload only the chunks the store lacks, then commit the manifest.

Interrupted at any point, the same push run again asks the store what is
missing and sends only that; the tracker commits a build only when every
chunk is in the store. Only the chunks of files the latest build did not have
are asked about: that build's commit checked the rest (tracker/commit_check.py
says why that holds, and the commit names any the scrub set aside since). The commit queues the new build's patches; a push that
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
    chunks_asked: int  # of which the seeder was asked whether it has them: those the latest build did not have
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


async def _commit(api: Api, game: str, data: bytes, notes: str, launch: str, delta: bytes) -> tuple[dict[str, Any], int]:
    """The tracker's answer, and the bytes the manifest took: the delta, or the whole when there is none or it is
    refused."""
    try:
        return await api.commit_build(game, data, notes, launch, delta), len(delta or data)
    except ServerRefused as exc:
        if not delta or exc.status != 400:
            raise
        # A tracker of an older version (or the latest build removed meanwhile): the whole manifest, then.
        return await api.commit_build(game, data, notes, launch), len(data)


class Upload:
    """The chunks of a build that the seeder lacks, asked about in bulk and sent in packs, read from the build
    folder (only those: a push of a 100 GB build with 1 GB changed locates 1% of its chunks)."""

    def __init__(
        self,
        api: Api,
        ticket: dict[str, str],
        manifest: Manifest,
        root: Path,
        level: int,
        progress: Progress,
        sizes: dict[str, int],
    ) -> None:
        self.api, self.ticket, self.manifest, self.root, self.level, self.progress = api, ticket, manifest, root, level, progress
        self.sizes = sizes  # manifest.chunk_sizes()
        self.lacking: list[str] = []
        self.chunks_sent = 0
        self.bytes_sent = 0

    @property
    def chunks(self) -> int:
        return len(self.lacking)

    async def missing_of(self, hashes: list[str]) -> None:
        """Ask the seeder which of `hashes` it lacks (it marks the others used, for the garbage collector)."""
        self.lacking = []
        for i in range(0, len(hashes), MISSING_QUERY):
            self.lacking += await self.api.missing(
                self.ticket["seeder_url"], self.ticket["ticket"], hashes[i : i + MISSING_QUERY]
            )

    async def send(self) -> None:
        missing, sizes = self.lacking, self.sizes
        where = await asyncio.to_thread(_locations, self.manifest, self.root, set(missing))
        bar = self.progress.bar("Uploading", sum(sizes[h] for h in missing))
        loop = asyncio.get_running_loop()
        limit = asyncio.Semaphore(UPLOADS_IN_FLIGHT)

        async def one(batch: list[str], pool: ThreadPoolExecutor) -> None:
            async with limit:
                blobs = await asyncio.gather(*(loop.run_in_executor(pool, _read_compressed, where[h], self.level) for h in batch))
                body = pack.encode(pack.Record(pack.CHUNK, h, b) for h, b in zip(batch, blobs))
                await self.api.seeder(f"{self.ticket['seeder_url']}/chunks", self.ticket["ticket"], body, 64 * 1024)
                self.bytes_sent += sum(len(b) for b in blobs)
                self.chunks_sent += len(batch)
                bar.advance(sum(sizes[h] for h in batch))
                crashpoints.reach("pushed-batch")

        with ThreadPoolExecutor(os.cpu_count() or 2) as pool:
            async with asyncio.TaskGroup() as group:
                for batch in pack.batches(missing, sizes, UPLOAD_BATCH, UPLOAD_CHUNKS):
                    group.create_task(one(batch, pool))
        self.lacking = []


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
    sizes = manifest.chunk_sizes()
    # The seeder is asked only about chunks the latest build did not have: its commit checked the others are stored
    # (tracker/commit_check.py). --rescan asks about every one, which also uploads one lost from the store by hand.
    asked = list(sizes)
    if latest and latest != version:
        held = cache.last_push(api.creds.url, game) if cache is not None else None
        signed = await api.manifest(game, latest, held)
        previous = signed.data
        before = await asyncio.to_thread(manifest_mod.parse, signed.data)  # not kept: 260 MB parsed at 100 GB
        why = shrinkage(before, manifest)
        if why and not confirm(why):
            raise NotConfirmed(why, "Nothing was uploaded; if that is what you mean, push again with --yes")
        asked = asked if rescan else list(manifest.chunks_beyond(before))
        del before
    upload = Upload(api, await api.call("POST", "/api/upload-ticket"), manifest, root, level, progress, sizes)
    await upload.missing_of(asked)
    progress.say(
        f"{count(len(sizes), 'chunk')} in {count(len(manifest.files), 'file')}; "
        + (f"{len(asked)} not in {latest}, " if len(asked) < len(sizes) else "")
        + f"{upload.chunks} not yet on the server"
    )
    await upload.send()
    data = manifest.canonical_bytes()
    delta = await asyncio.to_thread(manifest_delta.make, previous, data) if previous else b""
    delta = delta if len(delta) < len(data) else b""
    try:
        try:
            build, sent = await _commit(api, game, data, notes, launch.strip(), delta)
        except ServerRefused as exc:
            if exc.status != 409 or not isinstance(exc.detail, dict) or "missing_count" not in exc.detail:
                raise
            # A chunk the previous build had is gone from the store (the scrub set it aside as damaged): send those
            # the tracker named, or, when it named only some, ask about every chunk as a first push does.
            named, missing = list(exc.detail.get("missing", [])), int(exc.detail["missing_count"])
            every = len(named) < missing or not set(named) <= sizes.keys()
            progress.say(
                f"The server lacks {count(missing, 'chunk')} of {latest}; "
                + ("asking about all of them" if every else "sending them")
            )
            await upload.missing_of(list(sizes) if every else named)
            await upload.send()
            build, sent = await _commit(api, game, data, notes, launch.strip(), delta)
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
        chunks_asked=len(asked),
        chunks_uploaded=upload.chunks_sent,
        bytes_uploaded=upload.bytes_sent,
        digest=build["digest"],
        patch_job=build["patch_job"],
        patches_coming=build["patches_coming"],
        patches=made,
        warning=build.get("warning", ""),
        files_read=scanned.files_read,
        bytes_read=scanned.bytes_read,
        manifest_bytes=sent,
    )
