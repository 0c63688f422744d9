"""`mist-seeder`: the seeder alone, serving a chunk store to holders of the tracker's tickets."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import urllib.request
from pathlib import Path

import click
from aiohttp import web

from seeder.app import SeederContext, make_service
from seeder.ended_sessions import EndedSessions
from seeder.open_objects import raise_file_limit
from seeder.settings import SeederSettings
from seeder.tracker_key import KeyFollower
from shared.chunkstore import ChunkStore, open_store
from shared.errors import SettingsError
from shared.errors import MistError
from shared.service import metrics
from shared.service.runner import run_processes
from shared.version import installed_version


def _tracker_key(url: str) -> str:
    with urllib.request.urlopen(url.rstrip("/") + "/api/info", timeout=10) as response:
        return str(json.load(response)["public_key"])


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def make_root(store: ChunkStore, settings: SeederSettings) -> web.Application:
    """The seeder at /seeder with /metrics and /healthz beside it, as each `mist-seeder` process serves it.

    With a tracker URL, it follows the tracker's key hand-overs and refuses tickets of sessions the admin ended.
    """
    tracker_url = settings.tracker_url
    follower = KeyFollower(tracker_url, settings.public_key) if tracker_url else None
    context = SeederContext(
        store,
        settings.public_key,
        follow_key=follower,
        accel_redirect=settings.accel_redirect,
        link_seconds=settings.link_seconds,
        service=settings.service,
    )
    if tracker_url:
        context.ended = EndedSessions(tracker_url, lambda: context.public_key)
    return make_service(context)


@click.command()
@click.version_option(installed_version(), message="%(prog)s %(version)s")
@click.option(
    "--store",
    envvar="MIST_STORE_URL",
    required=True,
    metavar="DIR|s3://BUCKET/PREFIX",
    help="The chunk store shared with the tracker: its directory, or an S3 bucket (MIST_STORE_URL; "
    "MIST_S3_ENDPOINT_URL and the AWS_* variables say how to reach it).",
)
@click.option("--s3-endpoint-url", envvar="MIST_S3_ENDPOINT_URL", default="", hidden=True)
@click.option("--public-key", envvar="MIST_TRACKER_PUBLIC_KEY", default="", help="The tracker's public key.")
@click.option(
    "--tracker-url",
    envvar="MIST_TRACKER_URL",
    default="",
    help="Ask this tracker for its public key (unless --public-key gives it), and follow its signed "
    "hand-overs to a new key after a rotation.",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8701, show_default=True, type=int)
@click.option(
    "--metrics-dir",
    envvar="MIST_METRICS_DIR",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where this seeder's processes keep their counters for /metrics (emptied at start; "
    "default: a temporary directory removed at exit).",
)
@click.option(
    "--processes",
    envvar="MIST_SEEDER_PROCESSES",
    type=click.IntRange(min=1),
    default=None,
    help="Seeder processes sharing the port (SO_REUSEPORT).  [default: the CPUs this process may use]",
)
@click.option(
    "--accel-redirect",
    envvar="MIST_SEEDER_ACCEL_REDIRECT",
    default="",
    metavar="PREFIX",
    help="Behind nginx: let nginx send single objects, from its internal location PREFIX "
    "(for example /_store/, see deploy/nginx/seeder-accel.conf).",
)
@click.option(
    "--link-seconds",
    envvar="MIST_SEEDER_LINK_SECONDS",
    type=click.IntRange(min=0, max=7 * 24 * 3600),
    default=0,
    show_default=True,
    help="On an S3 store: answer GET /chunk/... with a redirect to a signed URL good this long (the client "
    "or a CDN fetches from the bucket), instead of streaming the object; 0 streams.",
)
def main(
    store: str,
    s3_endpoint_url: str,
    public_key: str,
    tracker_url: str,
    host: str,
    port: int,
    metrics_dir: Path | None,
    processes: int | None,
    accel_redirect: str,
    link_seconds: int,
) -> None:
    """Run the seeder alone at /seeder on HOST:PORT, with /metrics and /healthz at the root."""
    if not public_key and not tracker_url:
        raise click.UsageError("give --public-key or --tracker-url so the seeder can check tickets")
    if accel_redirect and not accel_redirect.startswith("/"):
        raise click.UsageError(f"--accel-redirect must be nginx's internal location, starting with / (got {accel_redirect!r})")
    try:
        settings = SeederSettings.from_env(
            dict(
                store=store,
                s3_endpoint_url=s3_endpoint_url,
                public_key=public_key or _tracker_key(tracker_url),
                tracker_url=tracker_url,
                host=host,
                port=port,
                metrics_dir=metrics_dir,
                processes=processes or usable_cpus(),
                accel_redirect=accel_redirect.rstrip("/") + "/" if accel_redirect else "",
                link_seconds=link_seconds,
            )
        )
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    count = settings.processes
    try:
        open_store(store, Path(store), s3_endpoint_url=s3_endpoint_url)  # a folder is made once, before the processes start
    except MistError as exc:
        raise click.BadParameter(str(exc), param_hint="--store") from None
    raise_file_limit()  # 200 clients' sockets and the objects kept open; the processes inherit it

    def ready(actual_port: int) -> None:
        more = f" ({count} processes)" if count > 1 else ""
        print(f"mist-seeder listening on http://{host}:{actual_port}/seeder{more}", file=sys.stderr, flush=True)

    # Counters live in per-process files from the start, so every process serving this port adds to one /metrics.
    with tempfile.TemporaryDirectory(prefix="mist-seeder-metrics-") as scratch:
        metrics.use_directory(metrics_dir or Path(scratch))
        run_processes(
            lambda: make_root(open_store(store, Path(store), s3_endpoint_url=s3_endpoint_url), settings),
            host,
            port,
            count,
            on_ready=ready,
            log_format=settings.service.logs("json"),
        )


if __name__ == "__main__":
    main()
