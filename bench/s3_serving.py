"""Serving an S3 store: the seeder streaming objects from the bucket, or redirecting to signed links.

A `mist-seeder` process serves a bucket on moto's S3 server (loopback, as in the tests). A client with a read
ticket fetches every chunk of a synthetic build three ways, 8 requests at a time:

- `pack`: POST /fetch, 64 objects a request, streamed through the seeder (what `mist install` does);
- `stream`: GET /chunk/<sha256> one object a request, streamed through the seeder;
- `link`: GET /chunk/<sha256> with `--link-seconds` set, the seeder answers 307 to a signed URL, and the
  client fetches the object from the bucket.

For each: wall time, the seeder process's CPU seconds (utime+stime from /proc) and the bytes it wrote
(wchar), as ratios against `pack` in the same run. moto is a Python server on the same two cores, so the
bucket's own cost weighs more here than against R2 or S3; the seeder's CPU and bytes are the figures that
carry over.

Usage: .venv/bin/python bench/s3_serving.py [--objects 400] [--size 262144] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from shared import compression, pack  # noqa: E402
from shared.chunking import ChunkRef, DEFAULT_PARAMS  # noqa: E402
from shared.manifest import FileEntry, Manifest  # noqa: E402
from shared.s3_store import S3ChunkStore  # noqa: E402
from shared.signing import Signer  # noqa: E402
from shared.tickets import READ, Ticket  # noqa: E402
from tests import s3  # noqa: E402
from tests.waiting import wait_until  # noqa: E402

BIN = Path(sys.executable).parent
AT_ONCE = 8
PER_PACK = 64


def seeder_cost(pid: int) -> tuple[float, int]:
    """CPU seconds and bytes written so far by a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    io = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    return cpu, int(io["wchar"])


def fill(store: S3ChunkStore, objects: int, size: int) -> tuple[Manifest, int]:
    """A build of `objects` incompressible chunks of `size` bytes, in the bucket; and their stored bytes."""
    rng = random.Random(3)
    refs, stored = [], 0
    for _ in range(objects):
        data = rng.randbytes(size)
        ref = ChunkRef(hashlib.sha256(data).hexdigest(), size)
        blob = compression.compress(data)
        store.put(ref.sha256, blob)
        refs.append(ref)
        stored += len(blob)
    entry = FileEntry("data.bin", size * objects, False, "0" * 64, tuple(refs))
    build = Manifest("bench", "1", DEFAULT_PARAMS, (entry,))
    store.put(build.digest(), compression.compress(build.canonical_bytes()))
    return build, stored


def start_seeder(env: dict[str, str], key: str, port: int, link_seconds: int, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as err:
        process = subprocess.Popen(
            [str(BIN / "mist-seeder"), "--store", env["MIST_STORE_URL"], "--public-key", key, "--port", str(port),
             "--processes", "1", "--link-seconds", str(link_seconds)],
            env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL)
    wait_until(lambda: " listening on " in log.read_text(), "mist-seeder to listen", timeout=60)
    return process


async def run(way: str, base: str, names: list[str], ticket: str) -> int:
    headers = {"Authorization": f"Ticket {ticket}"}
    limit = asyncio.Semaphore(AT_ONCE)
    async with aiohttp.ClientSession() as session:

        async def one(job: Awaitable[int]) -> int:
            async with limit:
                return await job

        async def a_pack(batch: list[str]) -> int:
            async with session.post(f"{base}/fetch", data=pack.encode_hashes(batch), headers=headers) as response:
                assert response.status == 200, await response.text()
                return sum(len(r.payload) for r in pack.iter_records(await response.read()))

        async def an_object(name: str) -> int:
            async with session.get(f"{base}/chunk/{name}", headers=headers, allow_redirects=False) as response:
                if response.status == 307:
                    async with session.get(response.headers["Location"]) as fetched:
                        assert fetched.status == 200
                        return len(await fetched.read())
                assert response.status == 200, await response.text()
                return len(await response.read())

        if way == "pack":
            jobs = [a_pack(names[i:i + PER_PACK]) for i in range(0, len(names), PER_PACK)]
        else:
            jobs = [an_object(name) for name in names]
        return sum(await asyncio.gather(*(one(job) for job in jobs)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=400)
    parser.add_argument("--size", type=int, default=256 * 1024)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    server = s3.start()
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"mist-s3-bench-{os.getpid()}"
    work.mkdir(parents=True)
    try:
        env = server.env(server.bucket(), "bench")
        os.environ.update(s3.CREDENTIALS)
        store = S3ChunkStore.from_url(env["MIST_STORE_URL"], server.endpoint)
        build, stored = fill(store, args.objects, args.size)
        names = [ref.sha256 for ref in build.files[0].chunks]
        signer = Signer.generate()
        ticket = Ticket("bench", READ, build.digest(), int(time.time()) + 3600).encode(signer)
        results: dict[str, list[tuple[float, float, int]]] = {}
        for way, link_seconds in (("pack", 0), ("stream", 0), ("link", 300)):
            port = s3._free_port()
            seeder = start_seeder(env, signer.public_key, port, link_seconds, work / f"{way}.log")
            try:
                base = f"http://127.0.0.1:{port}/seeder"
                asyncio.run(run(way, base, names[:PER_PACK], ticket))  # warm: the build's manifest, connections
                for _ in range(args.repeats):
                    cpu0, written0 = seeder_cost(seeder.pid)
                    start = time.perf_counter()
                    got = asyncio.run(run(way, base, names, ticket))
                    wall = time.perf_counter() - start
                    cpu1, written1 = seeder_cost(seeder.pid)
                    assert got == stored, (way, got, stored)
                    results.setdefault(way, []).append((wall, cpu1 - cpu0, written1 - written0))
            finally:
                seeder.terminate()
                seeder.wait(timeout=30)
        mb = stored / 1e6
        print(f"{args.objects} objects, {mb:.1f} MB stored; median of {args.repeats} runs; ratios against pack")
        base_wall = statistics.median(r[0] for r in results["pack"])
        base_cpu = statistics.median(r[1] for r in results["pack"])
        print(f"{'way':8} {'wall s':>8} {'x pack':>7} {'seeder CPU s':>13} {'x pack':>7} {'seeder wrote MB':>16}")
        for way, runs in results.items():
            wall = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            wrote = statistics.median(r[2] for r in runs) / 1e6
            print(f"{way:8} {wall:8.2f} {wall / base_wall:7.2f} {cpu:13.2f} {cpu / base_cpu:7.2f} {wrote:16.1f}")
    finally:
        server.process.terminate()
        server.process.wait(timeout=30)


if __name__ == "__main__":
    main()
