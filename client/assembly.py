"""Assembling the staged files of a plan: patches first, then local chunks, rdiff deltas, and the seeder's chunks.

Each file to write comes the way the tracker's plan found cheapest: a patch
object applied to a file content this machine holds, or its chunks (those
already on disk copied, the rest fetched). A file in the folder whose content
no build has (a mod, damage) may instead be patched by an rdiff delta against
its own signature, when the seeder finds that smaller than the chunks. Any
patch or delta that does not yield the manifest's exact file falls back to
chunks. Chunk-built files are finished (their mode set) as soon as their last
chunk lands; every staged file is made durable together at the end.

The chunk-built files are fetched a window of files at a time (`windows`), so
what the download holds per chunk position is one window's whatever the size
of the build, and the first bytes land while later windows' files do not even
exist yet.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from typing import TYPE_CHECKING

from client import inplace, patching, staging, swarm
from client.sources import Seeder
from client.errors import DownloadFailed
from client.swarm import Peers
from client.journal import MIST_DIR
from client.plan import InstalledChunks, Location, Plan, Routes
from shared.plan_wire import BUNDLE, CHUNKS, PATCH, BundleOffer
from client.progress import Bar
from shared import rdiff
from shared.errors import MistError, PatchError
from shared.manifest import FileEntry

if TYPE_CHECKING:
    from client.api import Api

FINISH_THREADS = 2
PREPARE_THREADS = 2
RDIFF = "rdiff"
LOCAL = "local"
# Below this, what is left to fetch of a file costs less than its signature and a round trip.
RDIFF_MIN_BYTES = 256 * 1024
# One download window: the files whose chunks are fetched together (a 100 GB build is 25 of them). What a
# window holds per chunk position is all the chunk download holds; a window also finds friends anew.
WINDOW_BYTES = 4 << 30  # MIST_INSTALL_WINDOW (MB) sets it for the process (client/settings.py)
WINDOW_CHUNKS = 1 << 16


class _Silent:
    def advance(self, amount: int) -> None:
        pass


class Assembly:
    def __init__(
        self,
        root: Path,
        plan: Plan,
        bar: Bar,
        routes: Routes | None = None,
        holders: Mapping[str, Path] | None = None,
        unknown: Mapping[str, Path] | None = None,
        peers: Peers | None = None,
        build: str = "",
        in_place: Mapping[str, Path] | None = None,
        other_build: Callable[[str], Awaitable[Seeder]] | None = None,
        window_bytes: int | None = None,
        window_chunks: int = WINDOW_CHUNKS,
    ) -> None:
        """`holders` maps file contents (SHA-256) to a local file believed to hold them (patch sources);
        `unknown` maps paths to write to the local file there whose content no build has (rdiff bases);
        `peers` reaches online friends, who serve chunks beside the seeder; `in_place` maps paths to the
        installed file there, of which only the changed chunks are to be written (client/inplace.py);
        `other_build` opens the seeder for another version of the game (a chain's intermediate patches are its);
        `window_bytes` (default WINDOW_BYTES, as `MIST_INSTALL_WINDOW` set it) and `window_chunks` bound one
        download window."""
        self.root, self.plan, self.bar, self.peers, self.build = root, plan, bar, peers, build
        self.from_peers = 0  # chunk bytes received from friends (counted in received[CHUNKS] too)
        self.chunks_from_peers = 0
        self.peer_tally: swarm.Tally | None = None
        self.routes = routes or Routes({})
        self.holders, self.unknown = dict(holders or {}), dict(unknown or {})
        self.other_build = other_build
        self._other_seeders: dict[str, Seeder] = {}
        self.in_place = dict(in_place or {})
        self.updated_in_place: set[str] = set()  # paths written where they lie (not staged, not moved at the swap)
        self.cloned: set[str] = set()  # paths staged as a clone of the installed file
        self.undo_bytes = 0
        self.reused = 0  # bytes taken from disk: local copies and chunks already verified in staging
        self.written = 0  # bytes written to staged files by this run
        self.received = {CHUNKS: 0, PATCH: 0, RDIFF: 0}
        self.files = {LOCAL: 0, CHUNKS: 0, PATCH: 0, RDIFF: 0}
        self.signature_bytes = 0
        self.fell_back: list[str] = []  # files whose patch or delta failed and came by chunks
        self._seeder: Seeder | None = None
        self._remaining: dict[Path, int] = {}
        self._entries: dict[Path, FileEntry] = {}
        self.window_bytes, self.window_chunks = window_bytes or WINDOW_BYTES, window_chunks
        self.windows = 0  # download windows done
        self.largest_window = 0  # chunk positions the largest window held

    def __repr__(self) -> str:
        return (
            f"Assembly(root={str(self.root)!r}, files={len(self.plan.write)}, "
            f"unfinished={sum(1 for left in self._remaining.values() if left)})"
        )

    async def run(self, seeder: Callable[[], Awaitable[Seeder]], api: Api) -> int:
        """Stage every file of the plan; return the bytes received from the seeder."""

        async def source() -> Seeder:
            if self._seeder is None:
                self._seeder = await seeder()
            return self._seeder

        (self.root / MIST_DIR / staging.STAGING).mkdir(parents=True, exist_ok=True)
        remaining = list(self.plan.write)
        patched = [e for e in remaining if self._patch_source(e) is not None]
        if patched:
            done = await self._apply_patches(patched, source, api)
            remaining = [e for e in remaining if e.path not in done]
        bundled = [e for e in remaining if self._bundle_of(e) is not None]
        if bundled:
            done = await self._apply_bundles(bundled, source, api)
            remaining = [e for e in remaining if e.path not in done]
        # Only the files an rdiff delta may serve are prepared now; the rest are prepared window by window.
        candidates = [e for e in remaining if e.path in self.unknown]
        prepared = dict(zip((e.path for e in candidates), await self._prepare(candidates)))
        deltas = [
            e
            for e in candidates
            if e.path not in self.updated_in_place and self._to_fetch(e, prepared[e.path]) >= RDIFF_MIN_BYTES
        ]
        if deltas:
            done = await self._apply_deltas(deltas, prepared, source, api)
            remaining = [e for e in remaining if e.path not in done]
        await self._fetch_chunks(remaining, prepared, source, api)
        return sum(self.received.values())

    # ---- patches -------------------------------------------------------------

    def _patch_source(self, entry: FileEntry) -> Path | None:
        if entry.path in self.in_place:
            return None  # the changed chunks cost less than writing the patch's whole file
        route = self.routes.get(entry.path)
        if route.source != PATCH or route.patch is None:
            return None
        return self.holders.get(route.patch.source)

    async def _apply_patches(self, files: list[FileEntry], source: Callable[[], Awaitable[Seeder]], api: Api) -> set[str]:
        # Objects by the build they are fetched under: "" for this one, a version for a chain's intermediate steps.
        sizes: dict[str, dict[str, int]] = {}
        targets: dict[str, list[tuple[Path, int]]] = {}
        for entry in files:
            for ref in self.routes.get(entry.path).steps:
                if ref.object not in targets and not await asyncio.to_thread(patching.make_room, self.root, ref.object, ref.size):
                    sizes.setdefault(ref.build, {})[ref.object] = ref.size
                    targets[ref.object] = [(patching.patch_path(self.root, ref.object), 0)]
        unavailable: set[str] = set()
        for build, under in sizes.items():
            unavailable |= await self._fetch_patches(under, targets, self._source_for(build, source), api)
        lost = [e for e in files if any(ref.object in unavailable for ref in self.routes.get(e.path).steps)]
        self.fell_back += [e.path for e in lost]
        files = [e for e in files if e not in lost]
        done: set[str] = set()
        limit = asyncio.Semaphore(FINISH_THREADS)

        async def one(entry: FileEntry) -> None:
            steps = self.routes.get(entry.path).steps
            holder = self._patch_source(entry)
            assert steps and holder is not None
            async with limit:
                try:
                    await asyncio.to_thread(patching.apply_chain, self.root, entry, steps, holder)
                except (MistError, OSError):
                    self.fell_back.append(entry.path)
                    # The file there is not what the install record says (a same-size mod or damage):
                    # its own signature may still beat the chunks.
                    here = self.root / entry.path
                    if here.is_file() and not here.is_symlink():
                        self.unknown.setdefault(entry.path, here)
                    return
            done.add(entry.path)
            self.files[PATCH] += 1
            self.written += entry.size
            self.bar.advance(entry.size)

        async with asyncio.TaskGroup() as group:
            for entry in files:
                group.create_task(one(entry))
        return done

    def _bundle_of(self, entry: FileEntry) -> BundleOffer | None:
        """The patch bundle the plan makes this file with, if every file it starts from is here."""
        route = self.routes.get(entry.path)
        offer = self.routes.bundles.get(route.bundle) if route.source == BUNDLE else None
        if entry.path in self.in_place or offer is None or any(s not in self.holders for s, _ in offer.members):
            return None
        return offer

    async def _apply_bundles(self, files: list[FileEntry], source: Callable[[], Awaitable[Seeder]], api: Api) -> set[str]:
        """Fetch the plan's patch bundles and stage their files; a bundle that cannot be had or does not apply
        sends its files to chunks."""
        by_bundle: dict[str, list[FileEntry]] = {}
        for entry in files:
            offer = self._bundle_of(entry)
            assert offer is not None
            by_bundle.setdefault(offer.object, []).append(entry)
        sizes: dict[str, int] = {}
        targets: dict[str, list[tuple[Path, int]]] = {}
        for name in by_bundle:
            size = self.routes.bundles[name].size
            if not await asyncio.to_thread(patching.make_room, self.root, name, size):
                sizes[name] = size
                targets[name] = [(patching.patch_path(self.root, name), 0)]
        unavailable = await self._fetch_patches(sizes, targets, source, api)
        done: set[str] = set()
        for name, entries in by_bundle.items():
            wanted: dict[str, list[FileEntry]] = {}
            for entry in entries:
                wanted.setdefault(entry.sha256, []).append(entry)
            try:
                if name in unavailable:
                    raise PatchError(f"patch bundle {name[:12]} could not be fetched")
                staged = await asyncio.to_thread(patching.apply_bundle, self.root, name, self.holders, wanted)
            except (MistError, OSError):
                self.fell_back += [e.path for e in entries]
                continue
            done.update(e.path for e in staged)
            self.files[PATCH] += len(staged)
            self.written += sum(e.size for e in staged)
            self.bar.advance(sum(e.size for e in staged))
        return done

    def _source_for(self, build: str, source: Callable[[], Awaitable[Seeder]]) -> Callable[[], Awaitable[Seeder]]:
        if not build:
            return source
        other, opened_once = self.other_build, self._other_seeders

        async def opened() -> Seeder:
            if other is None:
                raise DownloadFailed(f"no ticket for {build} here: a chain through it cannot be fetched")
            if build not in opened_once:
                opened_once[build] = await other(build)
            return opened_once[build]

        return opened

    async def _fetch_patches(
        self,
        sizes: dict[str, int],
        targets: dict[str, list[tuple[Path, int]]],
        source: Callable[[], Awaitable[Seeder]],
        api: Api,
    ) -> set[str]:
        """Fetch patch objects in batches; if a batch fails, each of its objects alone, so one object the
        seeder lacks (collected since the plan) or keeps sending damaged costs only its own file's patch.
        Returns the objects that could not be had."""
        if not sizes:
            return set()
        if await self._try_fetch(sizes, targets, source, api):
            return set()
        unavailable = set()
        for name, size in sizes.items():
            if not await asyncio.to_thread(patching.make_room, self.root, name, size):
                if not await self._try_fetch({name: size}, {name: targets[name]}, source, api):
                    unavailable.add(name)
        return unavailable

    async def _try_fetch(
        self,
        sizes: dict[str, int],
        targets: dict[str, list[tuple[Path, int]]],
        source: Callable[[], Awaitable[Seeder]],
        api: Api,
    ) -> bool:
        try:
            tally = await swarm.download(api, await source(), sizes, targets, _Silent(), lambda paths: None, None)
        except (MistError, ExceptionGroup) as exc:
            if isinstance(exc, ExceptionGroup) and exc.split(MistError)[1] is not None:
                raise
            return False
        self.received[PATCH] += tally.from_seeder
        return True

    # ---- rdiff deltas against unknown local content ---------------------------

    async def _apply_deltas(
        self,
        files: list[FileEntry],
        by_path: dict[str, staging.Prepared],
        source: Callable[[], Awaitable[Seeder]],
        api: Api,
    ) -> set[str]:
        """Each file by an rdiff delta where the seeder finds one cheaper; a file that falls back is prepared again."""
        done: set[str] = set()
        for entry in files:
            basis = self.unknown[entry.path]
            left = self._to_fetch(entry, by_path[entry.path])
            route = self.routes.get(entry.path)
            # What fetching the rest would cost, compressed as the store keeps it.
            budget = max(1, route.file_bytes * left // max(1, entry.size)) if route.file_bytes else left
            try:
                sig = await asyncio.to_thread(rdiff.signature, basis)
                seeder = await source()
                answer = await api.seeder(
                    f"{seeder.url}/delta", await seeder.ticket(), rdiff.encode_request(entry.sha256, budget, sig), budget
                )
            except (MistError, OSError):
                continue  # an older seeder, a chunk it lacks, a dropped connection: the chunks are still there
            self.signature_bytes += len(sig)
            if not answer:
                continue  # the seeder found chunks cheaper
            self.received[RDIFF] += len(answer)
            if len(answer) >= budget:
                self.fell_back.append(entry.path)  # a seeder that ignores the budget is not believed
                continue
            try:
                await asyncio.to_thread(patching.apply_delta, self.root, entry, basis, answer)
            except (MistError, OSError):
                self.fell_back.append(entry.path)
                by_path[entry.path] = await asyncio.to_thread(staging.prepare, self.root, entry)
                continue
            done.add(entry.path)
            self.files[RDIFF] += 1
            self.written += entry.size
            self.bar.advance(entry.size)
        return done

    # ---- chunks ----------------------------------------------------------------

    def _to_fetch(self, entry: FileEntry, prep: staging.Prepared) -> int:
        """Bytes of a staged file that no file on this disk holds: what the network would have to bring. The file
        being replaced does not count as holding them when its content is unknown (a mod, damage): its recorded
        chunk offsets no longer say what is there."""
        basis = str(self.unknown[entry.path]) if entry.path in self.unknown else None
        return sum(
            ref.size for _, ref in prep.needed if not any(loc.path != basis for loc in self.plan.local.get(ref.sha256, ()))
        )

    async def _prepare(self, files: list[FileEntry]) -> list[staging.Prepared]:
        # Two threads each take every other file: one thread hop per file costs more than creating the file.
        halves = [files[i::PREPARE_THREADS] for i in range(PREPARE_THREADS)]
        done = await asyncio.gather(
            *(asyncio.to_thread(lambda part: [self._prepare_one(e) for e in part], half) for half in halves)
        )
        prepared = [done[i % PREPARE_THREADS][i // PREPARE_THREADS] for i in range(len(files))]
        for entry, prep in zip(files, prepared):
            if prep.path is not None:
                self.updated_in_place.add(entry.path)
            if prep.cloned:
                self.cloned.add(entry.path)
            self.undo_bytes += prep.undo
        return prepared

    def _prepare_one(self, entry: FileEntry) -> staging.Prepared:
        """A staged file to fill, or for a large file that changed little, only its changed chunks to write:
        into a clone of the installed file, or (no clones here) into the installed file behind an undo journal."""
        installed = self.in_place.get(entry.path)
        staged = staging.staged_path(self.root, entry)
        if installed is None:
            return staging.prepare(self.root, entry)
        if staged.exists():  # our clone, from a run that was interrupted: resumed like any staged file
            prep = staging.prepare(self.root, entry)
            prep.cloned = True
            return prep
        if inplace.clone(installed, staged):
            prep = staging.prepare(self.root, entry)  # keeps every chunk the clone holds at its offset
            prep.cloned = True
            return prep
        needed = inplace.differing(installed, entry)
        undo = inplace.save(self.root, entry.path, installed, [(o, ref.size) for o, ref in needed], entry.size)
        return staging.Prepared(needed, entry.size - sum(ref.size for _, ref in needed), installed, undo)

    async def _fetch_chunks(
        self,
        files: list[FileEntry],
        prepared: dict[str, staging.Prepared],
        source: Callable[[], Awaitable[Seeder]],
        api: Api,
    ) -> None:
        """Fill every staged file, a window of files at a time: what one window holds (each chunk's targets and
        size, the scheduler's state, the files' countdowns) is all that is held, whatever the build's size.
        A chunk an earlier window wrote is copied from the staged file it went to, not fetched again."""
        staged: list[tuple[str, FileEntry]] = []  # the files of earlier windows, where they were written
        for window in windows(files, self.window_bytes, self.window_chunks):
            fresh = [e for e in window if e.path not in prepared]
            made = dict(zip((e.path for e in fresh), await self._prepare(fresh)))
            preps = [prepared.pop(e.path) if e.path in prepared else made[e.path] for e in window]
            await self._fetch_window(window, preps, staged, source, api)
            staged += [(str(p.path or staging.staged_path(self.root, e)), e) for e, p in zip(window, preps)]
            self.windows += 1

    async def _fetch_window(
        self,
        files: list[FileEntry],
        prepared: list[staging.Prepared],
        staged: list[tuple[str, FileEntry]],
        source: Callable[[], Awaitable[Seeder]],
        api: Api,
    ) -> None:
        """Fill one window's files: chunks this disk holds first (installed files, and the files of earlier
        windows), then the seeder and friends; each file is finished as its last chunk lands."""
        targets: dict[str, list[tuple[Path, int]]] = {}
        sizes: dict[str, int] = {}
        self._remaining.clear()
        self._entries.clear()
        for entry, prep in zip(files, prepared):
            self.reused += prep.resumed
            self.bar.advance(prep.resumed)
            path = prep.path or staging.staged_path(self.root, entry)
            self._entries[path] = entry
            self._remaining[path] = len(prep.needed)
            for offset, ref in prep.needed:
                targets.setdefault(ref.sha256, []).append((path, offset))
                sizes[ref.sha256] = ref.size
        self.largest_window = max(self.largest_window, sum(map(len, targets.values())))
        loop = asyncio.get_running_loop()
        tally = swarm.Tally()
        with ThreadPoolExecutor(FINISH_THREADS, thread_name_prefix="finish") as disk:
            async with asyncio.TaskGroup() as finishing:

                async def finish(path: Path) -> None:
                    entry = self._entries[path]
                    if entry.path in self.updated_in_place:
                        await loop.run_in_executor(disk, inplace.finish, path, entry)
                    else:
                        await loop.run_in_executor(disk, staging.finish, self.root, entry)

                def written_to(paths: list[Path]) -> None:
                    for path in paths:
                        self._remaining[path] -= 1
                        if self._remaining[path] == 0:
                            finishing.create_task(finish(path))

                for path, count in self._remaining.items():
                    if count == 0:
                        finishing.create_task(finish(path))
                if sizes:
                    target = self.plan.target
                    local: dict[str, Sequence[Location]] = {h: self.plan.local[h] for h in sizes if h in self.plan.local}
                    if staged:
                        earlier = await asyncio.to_thread(InstalledChunks(staged).only, sizes.keys() - local.keys())
                        local.update(earlier)
                    tally = await swarm.download(
                        api,
                        await source(),
                        sizes,
                        targets,
                        self.bar,
                        written_to,
                        self.peers,
                        target.game,
                        target.version,
                        self.build or target.digest(),
                        local,
                    )
                    self.received[CHUNKS] += tally.from_seeder + tally.from_peers
                    self.from_peers += tally.from_peers
                    self.chunks_from_peers += tally.chunks_from_peers
                    self.written += tally.written
                    self.reused += tally.copied
                    self.peer_tally = self._add_tally(tally)
        for entry, prep in zip(files, prepared):
            fetched = any(ref.sha256 in tally.from_network for _, ref in prep.needed)
            self.files[CHUNKS if fetched else LOCAL] += 1

    def _add_tally(self, tally: swarm.Tally) -> swarm.Tally:
        """The friends of every window so far (each window is a download of its own): those dropped, and as
        friends used the most any one window used (a friend is not told apart across windows)."""
        if self.peer_tally is None:
            return tally
        total = self.peer_tally
        total.peers_used = max(total.peers_used, tally.peers_used)
        total.peers_dropped.update(tally.peers_dropped)
        return total


def windows(files: Sequence[FileEntry], most_bytes: int, most_chunks: int) -> Iterator[list[FileEntry]]:
    """The files in order, in runs of at most `most_bytes` and `most_chunks` (a larger file is a run of its own)."""
    window: list[FileEntry] = []
    size = chunks = 0
    for entry in files:
        if window and (size + entry.size > most_bytes or chunks + len(entry.chunks) > most_chunks):
            yield window
            window, size, chunks = [], 0, 0
        window.append(entry)
        size, chunks = size + entry.size, chunks + len(entry.chunks)
    if window:
        yield window
