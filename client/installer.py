"""Install, update, verify, repair and uninstall: the client's engine.

Every operation converges an install directory on one signed build: plan
(pure), stage the files that change from local chunks and fetched ones, verify
each file, then swap them in with the journal. Killed at any point, the same
command run again resumes: finished swaps are completed, verified chunks in
staging are kept, nothing verified is downloaded twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from client import crashpoints, filemode, inplace, iocount, journal as journal_mod, longpath, staging
from client.api import Api
from client.errors import InstallError, NotConfirmed, NotEnoughSpace, RecordLost, ServerRefused
from client.ownership import file_stats, links_on_disk, split_ours
from client.progress import human
from shared.wording import count
from client.assembly import Assembly
from client.sources import Seeder
from client.journal import MIST_DIR, Confined, Journal
from client.plan import (
    InstalledBuilds,
    Plan,
    Routes,
    Target,
    estimate_download,
    in_place_worth,
    parse_routes,
    plan as make_plan,
    removes_most,
)
from client.progress import Progress
from client.outcome import Outcome
from shared.plan_wire import MAX_STEPS, PATCH
from client.state import Install, State
from client.swarm import Peers
from client.versions import newer
from shared import filelock
from shared.durable import link_or_copy_atomic, write_atomic
from shared.build_index import FileInfo
from shared.errors import ManifestError, MistError
from shared.links import folder_links
from shared.manifest import FileEntry

TARGET_MANIFEST = "target-manifest.json"
DISK_MARGIN = 4 * 1024 * 1024
TICKET_MARGIN = 300
MAX_HELD = 64  # builds the plan request names (the tracker's limit)
REPORT_TIMEOUT = 30  # seconds to tell the tracker an install finished


@dataclass(frozen=True)
class OnDisk:
    contents: dict[str, tuple[str, bool]]
    owned: list[str]
    foreign: list[str]
    unknown: dict[str, Path]
    links: dict[str, str]  # path -> target of the symbolic link there, for the target's links
    gone: list[str]  # paths the installed build put here that are no longer there at all (deleted by hand)
    installed: Install | None = None  # the install in this folder, if any


@dataclass(frozen=True)
class VerifyReport:
    game: str
    version: str
    files_bad: list[str]

    @property
    def ok(self) -> bool:
        return not self.files_bad


@contextmanager
def locked(locks: Path, root: Path) -> Iterator[None]:
    """One mist process per install directory at a time (the lock lives in MIST_HOME, not in the game's folder)."""
    locks.mkdir(exist_ok=True)
    name = hashlib.sha256(str(root).encode()).hexdigest()[:24]
    busy = InstallError(f"another mist command is working on {root}; wait for it to finish")
    with filelock.exclusive(locks / f"{name}.lock", busy):
        yield


async def _whole(swap: Awaitable[None]) -> None:
    """A swap runs to its end even when the task is cancelled (the app's pause), and only then lets go of the
    folder's lock: a thread still renaming files must not meet the next run of the same folder."""
    task = asyncio.ensure_future(swap)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise


def _hash_matches(path: Path, entry: FileEntry | FileInfo) -> bool:
    try:
        return (
            path.is_file()
            and not path.is_symlink()
            and path.stat().st_size == entry.size
            and staging.file_sha256(path) == entry.sha256
        )
    except OSError:
        return False


def _is_executable(path: Path, expected: bool) -> bool:
    return filemode.executable(path, expected)


def _intact(path: Path, entry: FileInfo) -> bool:
    """What `verify` checks: the content and the executable bit the manifest says."""
    return _hash_matches(path, entry) and _is_executable(path, entry.executable) == entry.executable  # Windows: no bit


def _change(previous: str, version: str, same_build: bool) -> str:
    if not previous:
        return "install"
    if same_build:
        return "reinstall" if previous == version else "update"
    return "downgrade" if newer(previous, version) else "update"


class Installer:
    def __init__(
        self,
        api: Api,
        state: State,
        progress: Progress,
        peers: Peers | None = None,
        confirm: Callable[[str], bool] = lambda why: False,
    ) -> None:
        """`peers`: how to reach friends online (None: the seeder alone). `confirm(why)` decides whether an
        update that removes most of an install goes ahead (a prompt, --yes, or the app's dialog)."""
        self.api, self.state, self.progress, self.peers, self.confirm = api, state, progress, peers, confirm
        self.locks = state.path.parent / "locks"
        # The app's queue: waits here, everything staged, while the game being swapped is running.
        self.before_swap: Callable[[str, Path], Awaitable[None]] | None = None
        # Whether the game is running now (the app knows): its installed files are then never written in place,
        # only staged beside it (or into a clone), so nothing changes under it before the swap.
        self.in_use: Callable[[str], bool] = lambda game: False

    def __repr__(self) -> str:
        return f"Installer(api={self.api!r}, state={self.state!r})"

    # ---- public operations -------------------------------------------------

    async def install(self, game: str, directory: Path, version: str | None = None, overwrite: bool = False) -> Outcome:
        root = longpath.extended(directory.expanduser().resolve())  # Windows: no 260-character limit
        await self.restore_lost_records()
        current = self.state.get(game)
        if current and current.dir != root:
            raise InstallError(f"{game} is already installed in {current.dir}; `mist update {game}` updates it there")
        for other in self.state.installs():
            if other.dir == root and other.game != game:
                raise InstallError(f"{root} holds {other.game}; choose another folder for {game}")
        if root.exists() and not root.is_dir():
            raise InstallError(f"{root} is a file; choose a folder to install into")
        made = not root.exists()  # `_converge` makes it
        try:
            return await self._converge(game, root, version or await self._latest(game), overwrite=overwrite)
        except BaseException:
            if made:
                _remove_if_empty(root)  # a first install that failed before it staged anything leaves no folder
            raise

    async def update(
        self,
        game: str,
        to: str | None = None,
        dry_run: bool = False,
        overwrite: bool = False,
    ) -> Outcome | tuple[Plan, Routes]:
        await self.restore_lost_records()
        current = await self._installed_or_why(game)
        version = to or await self._latest(game)
        if dry_run:
            return await self._preview(game, current.dir, version)
        return await self._converge(game, current.dir, version, overwrite=overwrite)

    async def preview(self, game: str, directory: Path, version: str | None = None) -> tuple[Plan, Routes]:
        """What installing or updating into `directory` would cost, as `--dry-run` shows it (nothing is written)."""
        await self.restore_lost_records()
        return await self._preview(game, directory, version)

    async def _preview(self, game: str, directory: Path, version: str | None) -> tuple[Plan, Routes]:
        _, target, _ = await self._target(game, version or await self._latest(game), keep=False)
        root = longpath.extended(directory.expanduser().resolve())  # as `install` records it, so an install matches
        plan, seen = await asyncio.to_thread(self._plan, root, target, set())
        routes = await self._routes(game, target.version, plan, frozenset(seen.gone))
        likely = {entry.path: before for entry, before in self._in_place_candidates(seen.installed, plan, seen, routes, set())}
        # A file written in place takes its changed chunks, not a patch, and the disk only they need.
        return plan.writing_in_place(likely), routes.by_chunks(likely.keys())

    async def converge(self, game: str, to: str | None = None, overwrite: bool = False) -> Outcome:
        """`update` without a dry run: move the installed game to `to` (default: the newest)."""
        await self.restore_lost_records()
        current = await self._installed_or_why(game)
        return await self._converge(game, current.dir, to or await self._latest(game), overwrite=overwrite)

    async def verify(self, game: str, repair: bool = False) -> tuple[VerifyReport, Outcome | None]:
        await self.restore_lost_records()
        current = self._installed(game)
        with locked(self.locks, current.dir):  # not while another command is swapping files in
            await _whole(asyncio.to_thread(self._finish_journal, current.dir))  # an interrupted update first
            current = self._installed(game)
            bad = await self._check(current)
        report = VerifyReport(game, current.version, bad)
        if not repair or not bad:
            return report, None
        return report, await self._converge(game, current.dir, current.version, distrust=set(bad))

    async def uninstall(self, game: str) -> tuple[Install, list[str]]:
        """Remove the game's files and links; those the friend changed since stay. (The install, the kept paths.)"""
        await self.restore_lost_records()
        current = self._installed(game)
        root = current.dir
        with locked(self.locks, root):
            await _whole(asyncio.to_thread(self._finish_journal, root))  # an interrupted update first
            current = self._installed(game)
            installed = await asyncio.to_thread(lambda: current.build)
            paths = [e.path for e in installed.infos()] + [e.path for e in installed.links]
            ours, kept = await asyncio.to_thread(split_ours, root, paths, installed, self.state.stats(game, current.digest))
            links = [e.path for e in installed.links]
            await asyncio.to_thread(journal_mod.apply, root, Journal(game, "", "", [], ours, [], [], links))
            shutil.rmtree(root / MIST_DIR, ignore_errors=True)
        self.state.forget(game)
        try:
            root.rmdir()
        except OSError:
            pass  # the folder holds files that are not the game's (saves, mods): leave them
        return current, kept

    async def restore_lost_records(self) -> None:
        """Put back the kept manifest of any install whose copy in MIST_HOME/builds is gone, from the tracker,
        checked against its signature and the digest recorded at install (every install is a possible source of
        chunks, so one lost record would stop installs of every game)."""
        for install in await asyncio.to_thread(self.state.lost):
            try:
                signed = await self.api.manifest(install.game, install.version)
            except ServerRefused as exc:
                if exc.status != 404:
                    raise
                raise RecordLost(
                    f"the manifest Mist kept for {install.game} {install.version} is gone from "
                    f"{self.state.path.parent / 'builds'}, and the tracker no longer has that build to fetch it "
                    f"again; ask the admin whether {install.game} {install.version} can be pushed again"
                ) from None
            if await self.api.verify_manifest(signed) != install.digest:
                raise RecordLost(
                    f"the manifest Mist kept for {install.game} {install.version} is gone, and the tracker's "
                    f"{install.game} {install.version} is another build now; ask the admin why it changed"
                )
            await asyncio.to_thread(self.state.restore_manifest, install.digest, signed.data)

    # ---- steps -------------------------------------------------------------

    def _installed(self, game: str) -> Install:
        current = self.state.get(game)
        if current is None:
            raise InstallError(f"{game} is not installed here; `mist install {game}` installs it")
        return current

    async def _installed_or_why(self, game: str) -> Install:
        """The install; if there is none, say whether the game exists at all before suggesting to install it."""
        current = self.state.get(game)
        if current is None:
            await self.api.call("GET", f"/api/games/{game}")  # no such game: the tracker's 404 says so
            return self._installed(game)
        return current

    async def _latest(self, game: str) -> str:
        info = await self.api.call("GET", f"/api/games/{game}")
        if not info["latest"]:
            raise InstallError(f"{game} has no builds yet; ask the admin to push one")
        return str(info["latest"])

    async def _target(self, game: str, version: str, keep: bool = True) -> tuple[bytes | Path, Target, int]:
        """Fetch the build's manifest and check it is signed by the pinned tracker key and is what was asked; also
        the bytes that took (a delta from the build of the game held here, when there is one). The manifest comes
        as its bytes, or as the file a delta of entries rebuilt it into: the caller removes that file when done
        with it (`keep`=False: at once, for a caller that needs only the index).

        Only the signed bytes are trusted, and what the client keeps of them is their index: made from the held
        build's index and the file entries that differ (or scanned), never parsed into Python objects whole."""
        # A kept file: a delta of entries is applied file to file, neither manifest held whole.
        held = await asyncio.to_thread(self.state.held_for_delta, game)
        signed = await self.api.manifest(game, version, held, into=self.state.incoming_manifest)
        digest = await self.api.verify_manifest(signed)
        if signed.path is not None and signed.rebuilt is not None:
            index = await asyncio.to_thread(self.state.index_rebuilt, digest, signed.delta_from, signed.rebuilt, signed.path)
        else:  # sent whole, or by an older tracker: the held bytes still spare a scan (BuildIndex.following)
            base = None
            if held is not None:
                kept = held[1]
                base = (held[0], kept if isinstance(kept, bytes) else await asyncio.to_thread(kept.read_bytes))
            index = await asyncio.to_thread(self.state.index_of, digest, signed.data, base)
        if (index.game, index.version) != (game, version):
            raise ManifestError(f"asked for {game} {version} but the signed manifest is {index.game} {index.version}")
        if signed.path is not None and not keep:
            await asyncio.to_thread(signed.path.unlink, missing_ok=True)
        return signed.path or signed.data, Target(index, digest), signed.received

    def _finish_journal(self, root: Path) -> None:
        """Complete a swap that a crash interrupted, and record the build it installed; or, when the crash came
        before the swap's journal, put back every file an in-place update had begun to change (the old build)."""
        pending = journal_mod.read(root)
        if pending is None:
            inplace.rollback(root)
            return
        journal_mod.apply(root, pending)
        data = root / MIST_DIR / TARGET_MANIFEST  # read only if this process has not indexed it (after a crash)
        installed = next((i for i in self.state.installs() if i.dir == root), None)
        index = self.state.made_index(pending.digest)
        if index is None:  # a crash: made again, from the held build's when there is one
            index = self.state.index_of(pending.digest, data, self.state.held_manifest(installed.game) if installed else None)
        paths = [f.path for f in index.infos()]
        # What Mist left in the folder: the files it moved in or touched now, the others as recorded before.
        before = self.state.stats(installed.game, installed.digest) if installed else None
        touched = {final for _, final in pending.moves} | {rel for rel, _ in pending.modes} | set(pending.in_place)
        kept = {p: before[p] for p in paths if before and p in before and p not in touched}
        fresh = file_stats(root, [p for p in paths if p not in kept])
        self.state.record(pending.game, root, data, pending.digest, pending.version)
        self.state.record_stats(pending.game, pending.digest, {**kept, **fresh})
        inplace.discard(root)  # before the journal goes: without it, a next run would take the undo for a crash
        journal_mod.clear(root)
        shutil.rmtree(root / MIST_DIR / staging.STAGING, ignore_errors=True)

    def _on_disk(self, root: Path, target: Target, distrust: set[str]) -> OnDisk:
        """What each path in the folder is believed to hold (content, executable), which paths the installed
        build owns, which of the target's paths hold someone else's file (a save, a mod, an old copy), and
        which hold a file whose content no build has (modded or damaged: an rdiff delta may serve it)."""
        on_disk: dict[str, tuple[str, bool]] = {}
        owned: list[str] = []
        foreign: list[str] = []
        gone: list[str] = []
        files = list(target.index.infos())
        targets = {e.path for e in files}
        current = next((i for i in self.state.installs() if i.dir == root), None)
        if current:
            for entry in current.build.infos():
                owned.append(entry.path)
                path = root / entry.path
                if entry.path not in distrust and path.is_file() and path.stat().st_size == entry.size:
                    on_disk[entry.path] = (entry.sha256, _is_executable(path, entry.executable))
                elif not os.path.lexists(path):
                    gone.append(entry.path)
        # Files in the folder that no install accounts for (a copied game, an interrupted first install's
        # swap): hash those the target names, and keep any that already hold the right content.
        owned_set = set(owned)
        for entry in files:
            if entry.path not in on_disk and entry.path not in owned_set and entry.path not in distrust:
                if _hash_matches(root / entry.path, entry):
                    on_disk[entry.path] = (entry.sha256, _is_executable(root / entry.path, entry.executable))
                elif os.path.lexists(root / entry.path):
                    foreign.append(entry.path)
        confined = Confined(root)
        unknown: dict[str, Path] = {}
        for p in targets:
            if p in on_disk:
                continue
            try:
                here = confined.path(p)  # its signature goes to the seeder: never a file outside the folder
            except InstallError:
                continue
            if here.is_file() and not here.is_symlink():
                unknown[p] = here
        links = links_on_disk(root, target.links)
        if current:
            owned += [e.path for e in current.build.links]
        for link in target.links:
            if link.path not in owned and links.get(link.path) != link.target and os.path.lexists(root / link.path):
                foreign.append(link.path)
        return OnDisk(on_disk, owned, foreign, unknown, links, gone, current)

    def _plan(self, root: Path, target: Target, distrust: set[str]) -> tuple[Plan, OnDisk]:
        seen = self._on_disk(root, target, distrust)
        # Damaged files stay sources too: every chunk read from disk is hashed before it is used.
        sources = [(str(i.dir), i.build) for i in self.state.installs()]
        # Files deleted by hand are no sources: planned from, each of their chunks would be looked for on disk
        # before it was fetched (a folder deleted and installed again tried every chunk of the build first).
        local = InstalledBuilds(sources, gone={str(root): frozenset(seen.gone)})
        return make_plan(target, seen.contents, seen.owned, local, seen.links), seen

    def _holders(self, root: Path, distrust: set[str]) -> dict[str, Path]:
        """A local file for every content an installed build put on this machine (patch sources; each is
        checked against the patch's source hash before use, so a damaged one only costs a fallback)."""
        holders: dict[str, Path] = {}
        for install in self.state.installs():
            confined = Confined(install.dir)
            for entry in install.build.infos():
                if entry.sha256 in holders or (install.dir == root and entry.path in distrust):
                    continue
                try:
                    path = confined.path(entry.path)
                except InstallError:
                    continue  # a folder on its way was replaced by a link: not ours to read
                if path.is_file() and not path.is_symlink() and path.stat().st_size == entry.size:
                    holders[entry.sha256] = path
        return holders

    async def _routes(self, game: str, version: str, plan: Plan, distrust: frozenset[str] = frozenset()) -> Routes:
        """Ask the tracker how to get each file to write: chunks, or a patch from a content held here."""
        mine = [i.digest for i in self.state.installs() if i.game == game]
        others = [i.digest for i in self.state.installs() if i.game != game]
        if not plan.write:
            return Routes({})  # asked even when nothing is held here: the answer sizes the download beforehand
        write = [e.path for e in plan.write]
        # What the paths to write hold now, by the installed manifest: a patch from it is kept even after
        # the admin removed that build, and the tracker can only know that from us.
        current = self.state.get(game)
        held = [current.build.info(p) for p in write if p not in distrust] if current else []
        contents = sorted({f.sha256 for f in held if f is not None})
        try:
            answer = await self.api.call(
                "POST",
                f"/api/games/{game}/builds/{version}/plan",
                json={
                    "have": (mine + others)[:MAX_HELD],
                    "write": write,
                    "contents": contents,
                    "steps": MAX_STEPS,
                    "bundles": True,
                },
            )
        except ServerRefused as exc:
            if exc.status in (401, 403, 404):
                raise  # the login or the game is gone: nothing else would work either
            # The plan only makes the update smaller; chunks always work. Say so, and go on.
            self.progress.say(f"the tracker could not plan patches ({exc}); fetching the changed files by chunks")
            return Routes({})
        return parse_routes(answer, write)

    def _in_place(
        self, root: Path, installed: Install | None, plan: Plan, seen: OnDisk, routes: Routes, distrust: set[str]
    ) -> dict[str, Path]:
        """Large files of the installed build that change little: only their changed chunks will be written."""
        confined = Confined(root)
        chosen: dict[str, Path] = {}
        for entry, before in self._in_place_candidates(installed, plan, seen, routes, distrust):
            try:
                path = confined.path(entry.path)
            except InstallError:
                continue
            if path.is_file() and not path.is_symlink() and not inplace.differing(path, before):
                chosen[entry.path] = path  # only a file that holds what its record says (a same-size mod does not)
        return chosen

    def _in_place_candidates(
        self, installed: Install | None, plan: Plan, seen: OnDisk, routes: Routes, distrust: set[str]
    ) -> Iterator[tuple[FileEntry, FileEntry]]:
        """The files to write worth writing in place, with their installed entries, before their bytes on disk
        are read (what a dry run says: the update itself also checks the file holds what its record says)."""
        if installed is None or self.in_use(installed.game):
            return
        for entry in plan.write:
            before = installed.build.file(entry.path)  # with its chunks: only for the files written
            if before is None or entry.path in distrust or seen.contents.get(entry.path, ("", False))[0] != before.sha256:
                continue  # not ours, or not what the install says: a whole new file
            if in_place_worth(before, entry, routes.get(entry.path)):
                yield entry, before

    def _check_space(self, root: Path, plan: Plan) -> None:
        already = 0
        for entry in plan.write:
            try:
                already += filemode.allocated(staging.staged_path(root, entry).stat())
            except FileNotFoundError:
                pass
        need = max(0, plan.peak_extra_disk - already)
        free = shutil.disk_usage(root).free
        if need + DISK_MARGIN > free:
            raise NotEnoughSpace(
                f"this needs {need + DISK_MARGIN:,} bytes free on the disk of {root} (the new files are staged beside "
                f"the old ones until the swap) but only {free:,} are free; free some space and run the command again"
            )

    def _clean_stale_staging(self, root: Path, plan: Plan) -> None:
        keep = {staging.staged_path(root, e).name for e in plan.write}
        folder = root / MIST_DIR / staging.STAGING
        if folder.is_dir():
            for item in folder.iterdir():
                if item.name not in keep:
                    item.unlink(missing_ok=True)

    async def _ticket_source(self, game: str, version: str) -> Seeder:
        first = await self.api.call("POST", f"/api/games/{game}/builds/{version}/ticket")
        held = {"ticket": first["ticket"], "expires": first["expires"]}

        async def ticket() -> str:
            if held["expires"] - TICKET_MARGIN < time.time():
                fresh = await self.api.call("POST", f"/api/games/{game}/builds/{version}/ticket")
                held.update(ticket=fresh["ticket"], expires=fresh["expires"])
            return str(held["ticket"])

        return Seeder(first["seeder_url"], ticket)

    async def _converge(
        self, game: str, root: Path, version: str, distrust: set[str] | None = None, overwrite: bool = False
    ) -> Outcome:
        started = time.monotonic()
        io_before = iocount.written_so_far()
        distrust = distrust or set()
        _make_folder(root)  # deleted by hand since the install: made again, and filled like an empty one
        with locked(self.locks, root), contextlib.ExitStack() as fetched:
            await _whole(asyncio.to_thread(self._finish_journal, root))
            self.progress.say(f"{game} {version}: fetching and checking the signed manifest")
            data, target, manifest_received = await self._target(game, version)
            if isinstance(data, Path):  # rebuilt into a file of its own: copied into the folder's .mist below
                fetched.callback(data.unlink, missing_ok=True)
            self.progress.say(f"{game} {version}: manifest checked ({human(manifest_received)} received); planning")
            # Asked now, while the plan is made and the tracker plans its routes: a round trip less before the first byte.
            ticket = asyncio.create_task(self._ticket_source(game, version))
            fetched.callback(_forget, ticket)
            plan, seen = await asyncio.to_thread(self._plan, root, target, distrust)
            installed = seen.installed
            if seen.foreign and not overwrite:
                raise InstallError(
                    f"{count(len(seen.foreign), 'file')} in {root} are not from any build of {game} but the new build "
                    f"would replace them (first: {seen.foreign[0]}); move them away, or run again with --overwrite"
                )
            if installed is not None:
                why = removes_most(installed.build, plan)
                if why and not self.confirm(why):
                    raise NotConfirmed(why)
            # Files deleted by hand hold nothing to patch from: the tracker is not told of them.
            routes = await self._routes(game, version, plan, frozenset(distrust) | frozenset(seen.gone))
            in_place = await asyncio.to_thread(self._in_place, root, installed, plan, seen, routes, distrust)
            if in_place and installed is not None:
                plan = plan.writing_in_place({p: e for p in in_place if (e := installed.build.file(p)) is not None})
            self._check_space(root, plan)  # a file written in place needs room for its changes only
            bar = self.progress.bar("Assembling", plan.bytes_to_write)  # the total is known: shown before the first byte
            planned = estimate_download(plan, routes.by_chunks(in_place.keys()))
            self.progress.say(
                f"{game} {version}: download about {human(sum(planned.values()))} ({human(planned[PATCH])} as patches), "
                f"write {count(len(plan.write), 'file')} ({human(plan.bytes_to_write)}), reuse "
                f"{human(plan.bytes_local)} from disk, needs {human(plan.peak_extra_disk)} extra disk until the swap; "
                f"{len(plan.unchanged)} untouched, {len(plan.delete)} to remove"
            )
            await asyncio.to_thread(self._clean_stale_staging, root, plan)
            (root / MIST_DIR).mkdir(exist_ok=True)
            if isinstance(data, Path):
                await asyncio.to_thread(link_or_copy_atomic, data, root / MIST_DIR / TARGET_MANIFEST)
            else:
                write_atomic(root / MIST_DIR / TARGET_MANIFEST, data)
            digest = target.digest()  # the signed digest, checked in _target
            assembly = Assembly(
                root,
                plan,
                bar,
                routes,
                holders=await asyncio.to_thread(self._holders, root, distrust),
                unknown=seen.unknown,
                peers=self.peers,
                build=digest,
                in_place=in_place,
                other_build=lambda v: self._ticket_source(game, v),
            )
            received = 0
            if plan.write:
                received = await assembly.run(lambda: _first(ticket, lambda: self._ticket_source(game, version)), self.api)
                written = [
                    in_place[e.path] if e.path in assembly.updated_in_place else staging.staged_path(root, e) for e in plan.write
                ]
                await asyncio.to_thread(staging.make_durable, root, written)
            deletes, kept = list(plan.delete), list[str]()
            if installed is not None:
                deletes, kept = await asyncio.to_thread(
                    split_ours, root, plan.delete, installed.build, self.state.stats(installed.game, installed.digest)
                )
            to_folders = folder_links((f.path for f in target.index.infos()), target.links) if plan.links else set()
            record = Journal(
                game,
                version,
                digest,
                [(staging.staged_rel(e), e.path) for e in plan.write if e.path not in assembly.updated_in_place],
                deletes,
                [(e.path, e.executable) for e in plan.modes],
                [(e.path, e.target, e.path in to_folders) for e in plan.links],
                [e.path for e in installed.build.links] if installed else [],
                sorted(assembly.updated_in_place),
            )
            crashpoints.reach("staged")
            if self.before_swap is not None:
                await self.before_swap(game, root)
            journal_mod.write(root, record)
            crashpoints.reach("journal-written")
            await _whole(asyncio.to_thread(self._finish_journal, root))
        shutil.rmtree(root / MIST_DIR, ignore_errors=True)
        if kept:
            self.progress.say(
                f"left {count(len(kept), 'file')} that {version} no longer has but that you changed: "
                + ", ".join(kept[:5])
                + (", ..." if len(kept) > 5 else "")
            )
        previous = installed.version if installed else ""
        nothing = not (plan.write or plan.delete or plan.modes or plan.links)
        if not (nothing and installed is not None and installed.digest == digest):
            await self._report_installed(game, version, digest, assembly, received)
        return Outcome(
            game=game,
            version=version,
            bytes_written=assembly.written,
            bytes_downloaded=received,
            bytes_reused=assembly.reused,
            bytes_unchanged=sum(f.size for f in plan.unchanged),
            files_written=len(plan.write),
            files_deleted=len(deletes),
            files_unchanged=len(plan.unchanged),
            seconds=round(time.monotonic() - started, 3),
            plan={**plan.to_json(), "bytes_by_source": planned, "patches_coming": len(routes.coming)},
            bytes_by_source=dict(assembly.received),
            files_by_source=dict(assembly.files),
            rdiff_signature_bytes=assembly.signature_bytes,
            fell_back_to_chunks=list(assembly.fell_back),
            bytes_from_seeder=received - assembly.from_peers,
            bytes_from_peers=assembly.from_peers,
            peers_used=assembly.peer_tally.peers_used if assembly.peer_tally else 0,
            peers_dropped=assembly.peer_tally.peers_dropped if assembly.peer_tally else {},
            previous_version=previous,
            change="current"
            if nothing and installed is not None and installed.digest == digest and not distrust
            else _change(previous, version, installed is not None and installed.digest == digest),
            files_kept=kept,
            links_made=len(plan.links),
            manifest_bytes=manifest_received,
            files_in_place=len(assembly.updated_in_place | assembly.cloned),
            bytes_saved_for_undo=assembly.undo_bytes,
            disk_bytes_written=iocount.written_so_far() - io_before if io_before >= 0 else -1,
        )

    async def _report_installed(self, game: str, version: str, digest: str, assembly: Assembly, received: int) -> None:
        """Tell the tracker this build is here now, and where its bytes came from: the next push makes its patches
        from the builds friends hold. Best effort: the game is installed whatever the tracker says."""
        body = {
            "digest": digest,
            "bytes_from_peers": assembly.from_peers,
            "chunks_from_peers": assembly.chunks_from_peers,
            "bytes_from_seeder": received - assembly.from_peers,
        }
        try:
            async with asyncio.timeout(REPORT_TIMEOUT):
                await self.api.call("POST", f"/api/games/{game}/builds/{version}/installed", json=body)
        except (MistError, TimeoutError) as exc:
            self.progress.say(f"installed, but the tracker did not hear of it ({exc}); the next update still works")

    async def _check(self, install: Install) -> list[str]:
        build = await asyncio.to_thread(lambda: install.build)
        files = list(build.infos())
        results = await asyncio.gather(*(asyncio.to_thread(_intact, install.dir / e.path, e) for e in files))
        present = links_on_disk(install.dir, build.links)
        # A link is intact when it points where the build says, or (where links are refused) its copy is there.
        broken = [e.path for e in build.links if present.get(e.path) != e.target and not (install.dir / e.path).exists()]
        return [e.path for e, ok in zip(files, results) if not ok] + broken


async def _first(ahead: asyncio.Task[Seeder], again: Callable[[], Awaitable[Seeder]]) -> Seeder:
    """The ticket asked for ahead; asked again now if that failed (as it would have been asked before). Shielded:
    a caller cancelled while waiting does not cancel it for the others."""
    try:
        return await asyncio.shield(ahead)
    except MistError:
        return await again()


def _forget(task: asyncio.Task[Seeder]) -> None:
    """A request made ahead that nothing awaited (nothing to fetch, or an error first): stopped, its error dropped."""
    if not task.done():
        task.cancel()
    elif not task.cancelled():
        task.exception()


def _make_folder(root: Path) -> None:
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InstallError(
            f"cannot make the folder {root} ({exc.strerror}); choose a folder you can write to (`mist install GAME --dir FOLDER`)"
        ) from exc


def _remove_if_empty(root: Path) -> None:
    """Remove a folder that holds nothing (or only an empty .mist); a folder with staged work is kept to resume."""
    for folder in (root / MIST_DIR / staging.STAGING, root / MIST_DIR, root):
        try:
            folder.rmdir()
        except FileNotFoundError:
            continue
        except OSError:
            return  # not empty: keep it
