"""`mist-seeder`: the seeder alone, serving a chunk store to holders of the tracker's tickets."""

from __future__ import annotations

import json
import sys
import tempfile
import urllib.request
from pathlib import Path

import click

from seeder.app import SeederContext, make_service
from seeder.tracker_key import KeyFollower
from shared.chunkstore import DirectoryChunkStore
from tracker import metrics
from tracker.serve import run


def _tracker_key(url: str) -> str:
    with urllib.request.urlopen(url.rstrip("/") + "/api/info", timeout=10) as response:
        return str(json.load(response)["public_key"])


@click.command()
@click.option("--store", type=click.Path(path_type=Path), required=True, help="The chunk store directory (shared with the tracker).")
@click.option("--public-key", envvar="MIST_TRACKER_PUBLIC_KEY", default="", help="The tracker's public key.")
@click.option("--tracker-url", envvar="MIST_TRACKER_URL", default="",
              help="Ask this tracker for its public key (unless --public-key gives it), and follow its signed "
                   "hand-overs to a new key after a rotation.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8701, show_default=True, type=int)
@click.option("--metrics-dir", envvar="MIST_METRICS_DIR", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Where this seeder's processes keep their counters for /metrics (emptied at start; "
                   "default: a temporary directory removed at exit).")
def main(store: Path, public_key: str, tracker_url: str, host: str, port: int, metrics_dir: Path | None) -> None:
    """Run the seeder alone at /seeder on HOST:PORT, with /metrics and /healthz at the root."""
    if not public_key and not tracker_url:
        raise click.UsageError("give --public-key or --tracker-url so the seeder can check tickets")
    key = public_key or _tracker_key(tracker_url)
    follower = KeyFollower(tracker_url, key) if tracker_url else None
    # Counters live in per-process files from the start, so every process serving this port adds to one /metrics.
    with tempfile.TemporaryDirectory(prefix="mist-seeder-metrics-") as scratch:
        metrics.use_directory(metrics_dir or Path(scratch))
        app = make_service(SeederContext(DirectoryChunkStore(store), key, follow_key=follower))
        run(app, host, port,
            on_ready=lambda: print(f"mist-seeder listening on http://{host}:{port}/seeder", file=sys.stderr, flush=True))
