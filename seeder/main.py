"""`mist-seeder`: the seeder alone, serving a chunk store to holders of the tracker's tickets."""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path

import click
from aiohttp import web

from seeder.app import MAX_UPLOAD_BODY, SeederContext, make_app
from seeder.tracker_key import KeyFollower
from shared.chunkstore import DirectoryChunkStore
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
def main(store: Path, public_key: str, tracker_url: str, host: str, port: int) -> None:
    """Run the seeder alone at /seeder on HOST:PORT."""
    if not public_key and not tracker_url:
        raise click.UsageError("give --public-key or --tracker-url so the seeder can check tickets")
    key = public_key or _tracker_key(tracker_url)
    follower = KeyFollower(tracker_url, key) if tracker_url else None
    root = web.Application(client_max_size=MAX_UPLOAD_BODY)  # a sub-application's own limit is not applied
    root.add_subapp("/seeder", make_app(SeederContext(DirectoryChunkStore(store), key, follow_key=follower)))
    run(root, host, port,
        on_ready=lambda: print(f"mist-seeder listening on http://{host}:{port}/seeder", file=sys.stderr, flush=True))
