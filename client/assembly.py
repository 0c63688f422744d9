"""Assembling the staged files of a plan: local chunks first, then the seeder's, each file finished as it completes.

A file is finished (hashed whole, made durable) as soon as its last chunk
lands, on threads of its own, so the disk absorbs finished files while the
network still brings the rest, and a thread waiting in fsync never holds up
the verification of downloads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from client import staging
from client.api import Api
from client.fetch import Seeder, fetch
from client.journal import MIST_DIR
from client.plan import Plan
from client.progress import Bar
from shared.manifest import FileEntry

FINISH_THREADS = 2
PREPARE_THREADS = 2


class Assembly:
    def __init__(self, root: Path, plan: Plan, bar: Bar) -> None:
        self.root, self.plan, self.bar = root, plan, bar
        self.reused = 0  # bytes taken from disk: local copies and chunks already verified in staging
        self.written = 0  # bytes written to staged files by this run
        self._remaining: dict[Path, int] = {}
        self._entries: dict[Path, FileEntry] = {}

    def __repr__(self) -> str:
        return f"Assembly(root={str(self.root)!r}, files={len(self.plan.write)}, unfinished={len(self._remaining)})"

    async def run(self, seeder: Callable[[], Awaitable[Seeder]], api: Api) -> int:
        """Stage every file of the plan; return the bytes received from the seeder."""
        local = dict(self.plan.local)
        (self.root / MIST_DIR / staging.STAGING).mkdir(parents=True, exist_ok=True)
        # Two threads each take every other file: one thread hop per file costs more than creating the file.
        halves = [self.plan.write[i::PREPARE_THREADS] for i in range(PREPARE_THREADS)]
        done = await asyncio.gather(*(
            asyncio.to_thread(lambda files: [staging.prepare(self.root, e, local) for e in files], half)
            for half in halves
        ))
        prepared = [done[i % PREPARE_THREADS][i // PREPARE_THREADS] for i in range(len(self.plan.write))]
        targets: dict[str, list[tuple[Path, int]]] = {}
        sizes: dict[str, int] = {}
        for entry, prep in zip(self.plan.write, prepared):
            self.reused += prep.resumed + prep.copied
            self.written += prep.copied
            self.bar.advance(prep.resumed + prep.copied)
            path = staging.staged_path(self.root, entry)
            self._entries[path] = entry
            self._remaining[path] = len(prep.needed)
            for offset, ref in prep.needed:
                targets.setdefault(ref.sha256, []).append((path, offset))
                sizes[ref.sha256] = ref.size
        received = 0
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(FINISH_THREADS, thread_name_prefix="finish") as disk:
            async with asyncio.TaskGroup() as finishing:

                async def finish(path: Path) -> None:
                    await loop.run_in_executor(disk, staging.finish, self.root, self._entries[path])

                def written_to(paths: list[Path]) -> None:
                    for path in paths:
                        self._remaining[path] -= 1
                        if self._remaining[path] == 0:
                            finishing.create_task(finish(path))

                for path, count in self._remaining.items():
                    if count == 0:
                        finishing.create_task(finish(path))
                if sizes:
                    received, fetched = await fetch(api, await seeder(), sizes, targets, self.bar, written_to)
                    self.written += fetched
        return received
