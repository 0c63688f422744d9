"""`mist-admin`: commands the admin runs on the server machine itself, beside the data directory."""

from __future__ import annotations

import click

from tracker.backup_cli import backup, restore


@click.group()
def main() -> None:
    """Mist's server-side admin tool."""


main.add_command(backup)
main.add_command(restore)
