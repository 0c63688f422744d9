"""The `backup` and `restore` commands of `mist-admin`: options in, one library call, a summary out."""

from __future__ import annotations

import json
from pathlib import Path

import click

from shared.errors import MistError
from shared.wording import count
from tracker.backups.backup import backup as run_backup
from tracker.backups.restore import restore as run_restore
from tracker.settings import Settings


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def _emit(as_json: bool, report: dict[str, object], text: str) -> None:
    click.echo(json.dumps(report, indent=1) if as_json else text)


@click.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option(
    "--data",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("data"),
    show_default=True,
    help="The server's data directory (the database comes from MIST_DATABASE_URL when set).",
)
@click.option("--recheck", is_flag=True, help="Hash the objects DIRECTORY already holds instead of trusting their names.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for scripts.")
def backup(directory: Path, data: Path, recheck: bool, as_json: bool) -> None:
    """Back up the server's database, chunk store and keys into DIRECTORY, while it runs.

    Run again into the same DIRECTORY, it copies only objects that are new.
    """
    try:
        settings = Settings.from_env(data)
        report = run_backup(
            data,
            directory,
            settings.database_url,
            recheck=recheck,
            say=lambda message: click.echo(message, err=True),
            store=settings.store,
        )
    except MistError as exc:
        raise click.ClickException(str(exc)) from exc
    text = (
        f"Backed up {count(report.games, 'game')}, {count(report.builds, 'build')} ({count(report.objects, 'object')}, "
        f"{_human(report.object_bytes)}) and the database at revision {report.revision} into {report.directory}.\n"
        f"Copied {report.objects_copied} new objects ({_human(report.bytes_copied)}); removed "
        f"{report.objects_pruned} that only an earlier backup needed; {report.seconds:.1f} s."
    )
    if report.patches_missing:
        text += (
            f"\n{len(report.patches_missing)} patch objects were missing on the server (friends get those "
            "files as chunks); `mistpipe scrub` reports damaged ones."
        )
    _emit(as_json, report.to_json(), text)


@click.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option(
    "--data",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="The new data directory (the database goes to MIST_DATABASE_URL when set).",
)
@click.option("--force", is_flag=True, help="Replace what the data directory and database already hold.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for scripts.")
def restore(directory: Path, data: Path, force: bool, as_json: bool) -> None:
    """Restore the backup in DIRECTORY into a new data directory, checking every object."""
    try:
        settings = Settings.from_env(data)
        report = run_restore(directory, data, settings.database_url, force=force, store=settings.store)
    except MistError as exc:
        raise click.ClickException(str(exc)) from exc
    text = (
        f"Restored the backup of {report.backup_created_at}: {count(report.games, 'game')}, {count(report.builds, 'build')}, "
        f"{count(report.objects, 'object')} ({report.objects_copied} copied, {_human(report.bytes_copied)}) into {report.data}, "
        f"the database into {report.database} (revision {report.revision_from} -> {report.revision_to}); "
        f"{report.seconds:.1f} s.\nStart the server with `mist-server --data {report.data}`."
    )
    _emit(as_json, report.to_json(), text)
