"""Fetching missing chunks from the seeder: many chunks per request, several requests in flight.

Each answer is checked chunk by chunk (decompressed, hashed) in a worker
thread before any byte is written to a staged file; a chunk that fails is
asked for again, and a seeder that keeps sending bad bytes stops the download.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from shared import wording
from client import crashpoints
from client.api import Api
from client.errors import DownloadFailed
from client.progress import Bar
from client.staging import write_at
from shared import compression, pack
from shared.errors import ChunkCorrupt

BATCH_BYTES = 4 * 1024 * 1024
BATCH_CHUNKS = 1024
IN_FLIGHT = 4
ATTEMPTS = 3

Targets = dict[str, list[tuple[Path, int]]]


@dataclass(frozen=True)
class Seeder:
    url: str
    ticket: Callable[[], Awaitable[str]]


@dataclass(frozen=True)
class Answer:
    """One seeder answer, checked: chunks written, corrupt, missing from its store, and not answered at all."""

    written: tuple[str, ...]
    corrupt: tuple[str, ...]
    missing: tuple[str, ...]
    unanswered: tuple[str, ...]
    bytes_written: int
    touched: tuple[Path, ...]
    wire: dict[str, int]  # each written chunk's size in the answer (compressed)


def check_and_write(body: bytes, asked: list[str], sizes: dict[str, int], targets: Targets) -> Answer:
    """Verify every chunk of one answer and write the good ones where `targets` says (run in a thread)."""
    written, corrupt, missing, touched = [], [], [], []
    wire: dict[str, int] = {}
    count = 0
    seen = set()
    wanted = set(asked)
    for record in pack.iter_records(body):
        if record.sha256 not in wanted or record.sha256 in seen:
            raise DownloadFailed(f"the seeder answered with chunk {record.sha256[:12]}, which was not asked for")
        seen.add(record.sha256)
        if record.kind == pack.MISSING:
            missing.append(record.sha256)
            continue
        try:
            data = compression.decompress(record.payload, sizes[record.sha256], record.sha256)
            if hashlib.sha256(data).hexdigest() != record.sha256:
                raise ChunkCorrupt("hash mismatch", record.sha256)
        except ChunkCorrupt:
            corrupt.append(record.sha256)
            continue
        for path, offset in targets[record.sha256]:
            write_at(path, offset, data)
            count += len(data)
            touched.append(path)
        written.append(record.sha256)
        wire[record.sha256] = len(record.payload)
    return Answer(tuple(written), tuple(corrupt), tuple(missing), tuple(h for h in asked if h not in seen),
                  count, tuple(touched), wire)


def missing_chunk(sha256: str) -> DownloadFailed:
    return DownloadFailed(f"the seeder does not have chunk {sha256[:12]} of this build; ask the admin to push it again")


def corrupt_chunk(count: int, sha256: str) -> DownloadFailed:
    return DownloadFailed(
        f"{wording.count(count, 'chunk')} arrived corrupt {ATTEMPTS} times (first {sha256[:12]}); "
        "the server's store may be damaged, tell the admin"
    )


async def fetch(
    api: Api, seeder: Seeder, sizes: dict[str, int], targets: Targets, bar: Bar,
    on_written: Callable[[list[Path]], None] = lambda paths: None,
) -> tuple[int, int]:
    """Fetch every chunk in `sizes` and write it where `targets` says; return (bytes received, bytes written).

    `on_written` hears of every chunk position written, so the caller can finish files as they complete.
    """
    received = written = 0
    pending = list(sizes)
    for attempt in range(ATTEMPTS):
        if not pending:
            break
        retry: list[str] = []
        limit = asyncio.Semaphore(IN_FLIGHT)

        async def one(batch: list[str]) -> None:
            nonlocal received, written
            async with limit:
                body = await api.seeder(f"{seeder.url}/fetch", await seeder.ticket(), pack.encode_hashes(batch),
                                        pack.answer_bound(sizes[h] for h in batch))
                received += len(body)
                answer = await asyncio.to_thread(check_and_write, body, batch, sizes, targets)
                if answer.missing:
                    raise missing_chunk(answer.missing[0])
                again = [*answer.corrupt, *answer.unanswered]
                written += answer.bytes_written
                on_written(list(answer.touched))
                retry.extend(again)
                bar.advance(sum(sizes[h] for h in batch if h not in again))
                crashpoints.reach("fetched-batch")

        async with asyncio.TaskGroup() as group:
            for batch in pack.batches(pending, sizes, BATCH_BYTES, BATCH_CHUNKS):
                group.create_task(one(batch))
        pending = retry
    if pending:
        raise corrupt_chunk(len(pending), pending[0])
    return received, written
