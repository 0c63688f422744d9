"""`mist-seeder`: the seeder alone, serving a chunk store to holders of the tracker's tickets."""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from pathlib import Path

import click
from aiohttp import web

from seeder.app import MAX_UPLOAD_BODY, SeederContext, make_app
from shared.chunkstore import DirectoryChunkStore
from tracker.serve import run_processes


def _tracker_key(url: str) -> str:
    with urllib.request.urlopen(url.rstrip("/") + "/api/info", timeout=10) as response:
        return str(json.load(response)["public_key"])


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def make_root(store: Path, public_key: str, accel_redirect: str = "") -> web.Application:
    """The seeder at /seeder, as `mist-seeder` serves it."""
    root = web.Application(client_max_size=MAX_UPLOAD_BODY)  # a sub-application's own limit is not applied
    root.add_subapp("/seeder", make_app(SeederContext(DirectoryChunkStore(store), public_key, accel_redirect=accel_redirect)))
    return root


@click.command()
@click.option("--store", type=click.Path(path_type=Path), required=True, help="The chunk store directory (shared with the tracker).")
@click.option("--public-key", envvar="MIST_TRACKER_PUBLIC_KEY", default="", help="The tracker's public key.")
@click.option("--tracker-url", envvar="MIST_TRACKER_URL", default="", help="Ask this tracker for its public key instead.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8701, show_default=True, type=int)
@click.option("--processes", envvar="MIST_SEEDER_PROCESSES", type=click.IntRange(min=1), default=None,
              help="Seeder processes sharing the port (SO_REUSEPORT).  [default: the CPUs this process may use]")
@click.option("--accel-redirect", envvar="MIST_SEEDER_ACCEL_REDIRECT", default="", metavar="PREFIX",
              help="Behind nginx: let nginx send single objects, from its internal location PREFIX "
                   "(for example /_store/, see deploy/nginx/seeder-accel.conf).")
def main(store: Path, public_key: str, tracker_url: str, host: str, port: int, processes: int | None,
         accel_redirect: str) -> None:
    """Run the seeder alone at /seeder on HOST:PORT."""
    if not public_key and not tracker_url:
        raise click.UsageError("give --public-key or --tracker-url so the seeder can check tickets")
    if accel_redirect and not accel_redirect.startswith("/"):
        raise click.UsageError(f"--accel-redirect must be nginx's internal location, starting with / (got {accel_redirect!r})")
    prefix = accel_redirect.rstrip("/") + "/" if accel_redirect else ""
    key = public_key or _tracker_key(tracker_url)
    count = processes or usable_cpus()
    DirectoryChunkStore(store)  # create it once, before the processes start

    def ready(actual_port: int) -> None:
        more = f" ({count} processes)" if count > 1 else ""
        print(f"mist-seeder listening on http://{host}:{actual_port}/seeder{more}", file=sys.stderr, flush=True)

    run_processes(lambda: make_root(store, key, prefix), host, port, count, on_ready=ready)


if __name__ == "__main__":
    main()
