"""`mist-tracker`: the tracker alone, for the compose stack (the seeder runs as its own service)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from shared.errors import MistError
from tracker.accounts import ensure_admin
from tracker.app import make_app
from tracker.config import Settings, open_locked
from tracker.serve import run


@click.command()
@click.option("--data", type=click.Path(path_type=Path), required=True, help="Directory for keys and the chunk store.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8700, show_default=True, type=int)
@click.option("--seeder-url", envvar="MIST_SEEDER_URL", required=True, help="Public URL of the seeder, told to clients.")
def main(data: Path, host: str, port: int, seeder_url: str) -> None:
    """Run the tracker alone; the database comes from MIST_DATABASE_URL (default: SQLite in DATA)."""
    try:
        ctx = open_locked(Settings(data=data.resolve(), seeder_url=seeder_url.rstrip("/")))
    except MistError as exc:  # e.g. an unfinished restore: one line that says what to do
        raise click.ClickException(str(exc)) from exc
    def ready() -> None:
        password = ensure_admin(ctx)  # once the port is ours: a failed start makes no account it cannot show
        if password:
            print(f"admin account created with password: {password}", flush=True)
        print(f"mist-tracker listening on http://{host}:{port}", file=sys.stderr, flush=True)

    run(make_app(ctx), host, port, on_ready=ready)
