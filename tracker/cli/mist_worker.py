"""`mist-worker`: runs the background jobs queued in the data directory (patches, the nightly scrub and garbage collection)."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from shared.service.observability import configure_logging
from shared.version import installed_version
from tracker.backups import unfinished_restore
from tracker.jobs.queue import open_jobs
from tracker.private_data import make_private
from shared.errors import SettingsError
from tracker.settings import Settings


@click.command()
@click.version_option(installed_version(), message="%(prog)s %(version)s")
@click.option("--data", type=click.Path(path_type=Path, file_okay=False), required=True, help="The tracker's data directory.")
@click.option(
    "--workers",
    default=2,
    show_default=True,
    type=int,
    help="Jobs run at once (a long patch job then does not hold up the rest).",
)
def main(data: Path, workers: int) -> None:
    """Run queued and periodic jobs until interrupted."""
    try:
        settings = Settings.from_env(data.resolve())
    except SettingsError as exc:
        raise SystemExit(f"Error: {exc}") from None
    if configure_logging(settings.service.logs("json")) == "text":
        logging.getLogger("huey").setLevel(logging.WARNING)  # a person reads it: no line per job run
    unfinished = unfinished_restore.refusal(data.resolve(), "start the worker")
    if unfinished:
        raise SystemExit(f"Error: {unfinished}")
    make_private(data)
    jobs = open_jobs(settings)
    jobs.huey.create_consumer(workers=workers, periodic=True).run()


if __name__ == "__main__":
    main()
