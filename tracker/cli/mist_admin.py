"""`mist-admin`: commands the admin runs on the server machine, on the tracker's data directory itself.

`mistpipe` talks to a running tracker over HTTP; these work on the data
directory and the database directly. `backup` runs beside a running tracker
(it reads one consistent snapshot); `rotate-key` changes what a tracker loads
when it starts, so it takes the data directory's lock and refuses while a
tracker runs on it; `restore` writes a new data directory before any tracker
starts on it. Each command parses options and calls one library function.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path

import click

from shared.errors import MistError
from shared.signing import fingerprint
from shared.wording import count
from shared.version import installed_version
from tracker import keys
from tracker.auth import Passwords
from tracker.cli.backups import backup, restore
from tracker.routes.accounts import MIN_PASSWORD, reset_password
from tracker.settings import Settings

DATA = click.option(
    "--data",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="The tracker's data directory (its database comes from MIST_DATABASE_URL, default SQLite in it).",
)


@click.group()
@click.version_option(installed_version(), message="%(prog)s %(version)s")
def main() -> None:
    """Mist's admin commands for the server machine: backups, restores, the signing key, passwords."""


@main.command("rotate-key")
@DATA
@click.option(
    "--leaked",
    is_flag=True,
    help="The old key may be in someone else's hands: sign no hand-over; every friend must log in again.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for scripts.")
def rotate_key(data: Path, leaked: bool, as_json: bool) -> None:
    """Give the tracker a new signing key, handed over by the old one so friends follow by themselves.

    Every build is signed again with the new key. Run it while the tracker is
    stopped; if it is interrupted, run it again to finish the same rotation.
    """
    try:
        rotation = keys.rotate_stopped(data.resolve(), int(time.time()), leaked, Settings.from_env(data).database_url)
    except MistError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(rotation.to_json()))
    else:
        click.echo(report(rotation))


@main.command("reset-password")
@click.argument("name")
@DATA
def reset_password_command(name: str, data: Path) -> None:
    """Give the account NAME a new password, from MIST_PASSWORD or made up and printed; its sessions end.

    The way back in when the admin's password is lost: it works on the tracker's database directly,
    with or without a tracker running on it.
    """
    given = os.environ.get("MIST_PASSWORD", "")
    if given and len(given) < MIN_PASSWORD:
        raise click.ClickException(f"MIST_PASSWORD must have at least {MIN_PASSWORD} characters")
    password = given or secrets.token_urlsafe(12)
    try:
        settings = Settings.from_env(data)
        reset_password(data.resolve(), name, password, time.time(), settings.database_url, Passwords(settings.password_hash_cost))
    except MistError as exc:
        raise click.ClickException(str(exc)) from exc
    said = "set to MIST_PASSWORD" if given else f"set to:\n    {password}"
    click.echo(f"The password of {name} was {said}\nTheir sessions ended; they log in again with it.")


def report(rotation: keys.Rotation) -> str:
    """What happened, and exactly what the admin does next."""
    data, new = rotation.data, fingerprint(rotation.new)
    lines = [
        "Finished the key rotation that was interrupted."
        if rotation.resumed
        else f"Rotated the tracker's signing key in {data}.",
        f"  old key  {fingerprint(rotation.old)}  (kept in {rotation.retired_path}, mode 0600)",
        f"  new key  {new}",
        f"  {count(rotation.builds_resigned, 'build')} signed again with the new key; "
        + ("the old key signed a hand-over to it." if rotation.handed_over else "no hand-over was signed (--leaked)."),
        "",
        "Next:",
        f"  1. Start the tracker again (mist-server --data {data}, or mist-tracker; in compose: docker compose start tracker).",
        "     A tracker loads its key only when it starts.",
    ]
    if rotation.handed_over:
        lines += [
            "  2. Seeders started with --tracker-url follow the hand-over by themselves, at the first ticket signed by",
            f"     the new key. Restart a seeder started with --public-key, giving it --public-key {rotation.new}",
            "  3. Friends need do nothing: their next mist or mistpipe command checks the hand-over, trusts the new key",
            "     and says so once. A friend's daemon does the same when a friend's ticket needs the new key.",
        ]
    else:
        lines += [
            "  2. Restart every seeder: one started with --tracker-url learns the new key when it starts; one started",
            f"     with --public-key needs --public-key {rotation.new}",
            "  3. Every friend's client (and your own mistpipe) refuses the tracker until they log in again. Tell each",
            "     friend the new key's fingerprint over a channel no one else controls (in person, a phone call):",
            f"         {new}",
            "     and have them run: mist login URL --user NAME --fingerprint " + new,
            "     (admins: mistpipe login URL --user NAME --fingerprint ...). The login refuses any other key.",
        ]
    return "\n".join(lines)


main.add_command(backup)
main.add_command(restore)
