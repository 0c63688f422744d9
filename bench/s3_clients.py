"""Which S3 client library for the bucket store: boto3 in threads, aiobotocore, or obstore (Rust, object_store).

What the store does most is many small requests at once: a push asks which of thousands of chunks the bucket
lacks (HEAD each), uploads the missing ones (PUT) and renews the rest; a seeder reads objects (GET). Each
library does N of each, 16 at a time, against moto's S3 server on loopback; the figures are the wall time
and the client process's CPU time, as ratios against boto3 in the same run.

The libraries need not share one environment (aiobotocore pins its own botocore): each runs in the Python
named by `--python NAME=INTERPRETER`; boto3 runs in this one.

Usage: .venv/bin/python bench/s3_clients.py [--objects 400] [--size 65536] \
           [--python obstore=/tmp/s3bench/bin/python --python aiobotocore=/tmp/s3bench/bin/python]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

AT_ONCE = 16
KEYS = {"AWS_ACCESS_KEY_ID": "mist-test", "AWS_SECRET_ACCESS_KEY": "mist-test-secret", "AWS_DEFAULT_REGION": "us-east-1"}


def payloads(objects: int, size: int) -> dict[str, bytes]:
    rng = random.Random(5)
    return {f"bench/{i:06d}": rng.randbytes(size) for i in range(objects)}


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(step: Callable[[], None]) -> tuple[float, float]:
    cpu0, start = cpu(), time.perf_counter()
    step()
    return time.perf_counter() - start, cpu() - cpu0


def run_boto3(endpoint: str, bucket: str, data: dict[str, bytes]) -> dict[str, tuple[float, float]]:
    import boto3
    from botocore.config import Config

    s3 = boto3.session.Session().client("s3", endpoint_url=endpoint, config=Config(
        signature_version="s3v4", max_pool_connections=AT_ONCE * 2, s3={"addressing_style": "path"}))
    pool = ThreadPoolExecutor(AT_ONCE)

    def each(fn: Callable[[str], Any]) -> Callable[[], None]:
        def run() -> None:
            list(pool.map(fn, data))

        return run

    return {
        "put": timed(each(lambda key: s3.put_object(Bucket=bucket, Key=key, Body=data[key]))),
        "head": timed(each(lambda key: s3.head_object(Bucket=bucket, Key=key))),
        "get": timed(each(lambda key: s3.get_object(Bucket=bucket, Key=key)["Body"].read())),
    }


def run_aiobotocore(endpoint: str, bucket: str, data: dict[str, bytes]) -> dict[str, tuple[float, float]]:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    async def main() -> dict[str, tuple[float, float]]:
        config = AioConfig(signature_version="s3v4", max_pool_connections=AT_ONCE * 2, s3={"addressing_style": "path"})
        async with get_session().create_client("s3", endpoint_url=endpoint, config=config) as s3:
            limit = asyncio.Semaphore(AT_ONCE)

            async def put(key: str) -> None:
                async with limit:
                    await s3.put_object(Bucket=bucket, Key=key, Body=data[key])

            async def head(key: str) -> None:
                async with limit:
                    await s3.head_object(Bucket=bucket, Key=key)

            async def get(key: str) -> None:
                async with limit:
                    response = await s3.get_object(Bucket=bucket, Key=key)
                    async with response["Body"] as body:
                        await body.read()

            found = {}
            for name, fn in (("put", put), ("head", head), ("get", get)):
                cpu0, start = cpu(), time.perf_counter()
                await asyncio.gather(*(fn(key) for key in data))
                found[name] = (time.perf_counter() - start, cpu() - cpu0)
            return found

    return asyncio.run(main())


def run_obstore(endpoint: str, bucket: str, data: dict[str, bytes]) -> dict[str, tuple[float, float]]:
    import obstore
    from obstore.store import S3Store

    store = S3Store(bucket, endpoint=endpoint, client_options={"allow_http": True}, virtual_hosted_style_request=False,
                    access_key_id=KEYS["AWS_ACCESS_KEY_ID"], secret_access_key=KEYS["AWS_SECRET_ACCESS_KEY"],
                    region=KEYS["AWS_DEFAULT_REGION"])

    async def main() -> dict[str, tuple[float, float]]:
        limit = asyncio.Semaphore(AT_ONCE)

        async def put(key: str) -> None:
            async with limit:
                await obstore.put_async(store, key, data[key])

        async def head(key: str) -> None:
            async with limit:
                await obstore.head_async(store, key)

        async def get(key: str) -> None:
            async with limit:
                await (await obstore.get_async(store, key)).bytes_async()

        found = {}
        for name, fn in (("put", put), ("head", head), ("get", get)):
            cpu0, start = cpu(), time.perf_counter()
            await asyncio.gather(*(fn(key) for key in data))
            found[name] = (time.perf_counter() - start, cpu() - cpu0)
        return found

    return asyncio.run(main())


RUNNERS = {"boto3": run_boto3, "aiobotocore": run_aiobotocore, "obstore": run_obstore}


def child(name: str, endpoint: str, bucket: str, objects: int, size: int) -> None:
    os.environ.update(KEYS)
    print(json.dumps(RUNNERS[name](endpoint, bucket, payloads(objects, size))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=400)
    parser.add_argument("--size", type=int, default=64 * 1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--python", action="append", default=[], metavar="NAME=INTERPRETER")
    parser.add_argument("--child", nargs=3, metavar=("NAME", "ENDPOINT", "BUCKET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, endpoint, bucket = args.child
        child(name, endpoint, bucket, args.objects, args.size)
        return

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests import s3

    interpreters = {"boto3": sys.executable, **dict(item.split("=", 1) for item in args.python)}
    server = s3.start()
    try:
        figures: dict[str, dict[str, list[tuple[float, float]]]] = {}
        for _ in range(args.repeats):
            for name, python in interpreters.items():  # interleaved, so a busy moment hits every library alike
                bucket = server.bucket()
                done = subprocess.run([python, __file__, "--objects", str(args.objects), "--size", str(args.size),
                                       "--child", name, server.endpoint, bucket],
                                      capture_output=True, text=True, check=True, env={**os.environ, **KEYS})
                for step, value in json.loads(done.stdout).items():
                    figures.setdefault(name, {}).setdefault(step, []).append(tuple(value))
    finally:
        server.process.terminate()
        server.process.wait(timeout=30)

    def median(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]

    print(f"{args.objects} objects of {args.size} bytes, {AT_ONCE} at a time; median of {args.repeats}; "
          "wall s (x boto3) / client CPU s (x boto3)")
    base = figures["boto3"]
    for name, steps in figures.items():
        cells = []
        for step in ("put", "head", "get"):
            wall, used = median([r[0] for r in steps[step]]), median([r[1] for r in steps[step]])
            bwall, bused = median([r[0] for r in base[step]]), median([r[1] for r in base[step]])
            cells.append(f"{step} {wall:5.2f} ({wall / bwall:4.2f}) / {used:5.2f} ({used / bused:4.2f})")
        print(f"{name:12} " + "   ".join(cells))


if __name__ == "__main__":
    main()
