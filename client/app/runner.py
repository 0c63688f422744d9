"""Carrying out one queued job with the installer, and cleaning up after a cancelled one.

The installer already resumes from staged files and keeps a folder to one
command at a time; this adds what the queue needs around it: friends to fetch
from (the daemon's swarm), the live byte counts by source, the wait for a
running game before a swap, and, after a download finished, the daemon
re-reading what it can share.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from client import inplace, journal as journal_mod, staging
from client.app.downloads import Job, JobProgress
from client.installer import Installer, locked
from client.journal import MIST_DIR
from client.swarm import SEEDER

if TYPE_CHECKING:
    from client.app.service import Service


class Runner:
    def __init__(self, service: "Service") -> None:
        self.service = service
        self.live: dict[str, int] | None = None  # the running download's bytes by source, as they come

    def __repr__(self) -> str:
        return f"Runner({self.service!r})"

    async def __call__(self, job: Job, progress: JobProgress) -> dict[str, Any]:
        daemon = self.service.daemon
        peers = daemon.peers()
        installer = Installer(daemon.need_api(), daemon.state, progress, peers, confirm=lambda why: job.yes)
        player = self.service.player

        async def before_swap(game: str, root: Path) -> None:
            player.waiting[game] = lambda waiting: self.service.downloads.waiting(job, waiting)
            try:
                await player.until_closed(game)
            finally:
                player.waiting.pop(game, None)

        installer.before_swap = before_swap
        installer.in_use = lambda game: game in player.running
        if peers is not None:
            self.live = peers.received
            self.service.downloads.counters[:] = [lambda: _split(peers.received)]
        try:
            if job.op == "install":
                outcome = await installer.install(job.game, Path(job.dir), job.version, job.overwrite)
                result: dict[str, Any] = outcome.to_json()
            elif job.op == "update":
                outcome = await installer.converge(job.game, job.version, job.overwrite)
                result = outcome.to_json()
            else:
                report, repaired = await installer.verify(job.game, repair=True)
                result = {
                    "game": job.game,
                    "version": report.version,
                    "ok": report.ok,
                    "files_bad": report.files_bad,
                    "repaired": repaired.to_json() if repaired else None,
                }
        finally:
            self.live = None
            self.service.downloads.counters.clear()
            if peers is not None:
                self.service.friends.received_now(peers.received)
            await daemon.refresh()
        return result

    async def clean(self, job: Job) -> None:
        """A cancelled job: its staged files go (a first install's folder too, when nothing else is in it)."""
        root = Path(job.dir)
        installed = self.service.daemon.state.get(job.game)
        await asyncio.to_thread(_remove_staging, self.service.daemon.state.path.parent / "locks", root, installed is None)


def _split(received: dict[str, int]) -> tuple[int, int]:
    """(bytes from friends, bytes from the server) of a download's live counts."""
    server = received.get(SEEDER, 0)
    return sum(received.values()) - server, server


def _remove_staging(locks: Path, root: Path, first_install: bool) -> None:
    if not root.exists():
        return
    with locked(locks, root):
        if journal_mod.read(root) is None:  # cancelled before its swap: files written in place get their old bytes back
            inplace.rollback(root)
        shutil.rmtree(root / MIST_DIR / staging.STAGING, ignore_errors=True)
        if first_install:
            shutil.rmtree(root / MIST_DIR, ignore_errors=True)
            try:
                root.rmdir()
            except OSError:
                pass  # the friend's own files are there: leave the folder
