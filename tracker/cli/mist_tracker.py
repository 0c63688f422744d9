"""`mist-tracker`: the tracker alone, for the compose stack (the seeder runs as its own service)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from shared.errors import MistError
from shared.service.runner import run
from shared.version import installed_version
from tracker import public_url
from tracker.app import make_app
from tracker.config import open_locked
from tracker.settings import Settings
from tracker.routes.accounts import ensure_admin
from shared.errors import SettingsError


@click.command()
@click.version_option(installed_version(), message="%(prog)s %(version)s")
@click.option("--data", type=click.Path(path_type=Path), required=True, help="Directory for keys and the chunk store.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8700, show_default=True, type=int)
@click.option(
    "--public-url",
    "configured_url",
    envvar=public_url.ENV,
    default="",
    help=f"Where friends reach the tracker (${public_url.ENV}), e.g. https://mist.example.org.",
)
@click.option(
    "--seeder-url",
    envvar="MIST_SEEDER_URL",
    default="",
    help="Public URL of the seeder, told to clients.  [default: the public URL + /seeder]",
)
def main(data: Path, host: str, port: int, configured_url: str, seeder_url: str) -> None:
    """Run the tracker alone; the database comes from MIST_DATABASE_URL (default: SQLite in DATA)."""
    try:
        url = public_url.for_listener(host, port, configured_url)
    except public_url.PublicUrlError as exc:
        raise click.BadParameter(str(exc), param_hint="--public-url") from None
    if not seeder_url and not configured_url:
        raise click.UsageError(
            f"tell clients where the seeder is: --seeder-url (MIST_SEEDER_URL), or --public-url "
            f"(${public_url.ENV}) when it is at /seeder behind the same proxy"
        )
    try:
        settings = Settings.from_env(
            data.resolve(), seeder_url=seeder_url.rstrip("/"), public_url=url, public_url_configured=bool(configured_url)
        )
        ctx = open_locked(settings)
    except (MistError, SettingsError) as exc:  # e.g. an unfinished restore: one line that says what to do
        raise click.ClickException(str(exc)) from exc

    def ready() -> None:
        password = ensure_admin(ctx)  # once the port is ours: a failed start makes no account it cannot show
        if password:
            print(f"admin account created with password: {password}", flush=True)
        print(f"mist-tracker listening on http://{host}:{port}", file=sys.stderr, flush=True)

    run(make_app(ctx), host, port, on_ready=ready, log_format=settings.service.logs("json"))
