"""What `mist` and `mistpipe` share on the command line: passwords, sessions, errors, output."""

from __future__ import annotations

import errno
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from client.settings import ClientSettings
from shared.errors import SettingsError
from shared.errors import MistError
from shared.version import installed_version

if TYPE_CHECKING:
    from client.api import Api  # imported where a session starts: aiohttp is 0.13 s of every command otherwise

T = TypeVar("T")


class UnreadableSettings:
    """What the group's callback keeps when a MIST_* value is bad: the command that needs the settings says so,
    while `--help` of every command still answers."""

    def __init__(self, error: SettingsError) -> None:
        self.error = error

    def __repr__(self) -> str:
        return f"UnreadableSettings({self.error!r})"


def settings_at_start() -> ClientSettings | UnreadableSettings:
    """The environment, read once as `mist` or `mistpipe` starts (their group's callback); arms the test hooks."""
    try:
        settings = ClientSettings.from_env()
    except SettingsError as exc:
        return UnreadableSettings(exc)
    settings.arm()
    return settings


def client_settings() -> ClientSettings:
    """The settings read at start, which click's context carries from the group to the command running."""
    context = click.get_current_context()
    found = context.find_object(ClientSettings)
    if found is not None:
        return found
    unreadable = context.find_object(UnreadableSettings)
    if unreadable is not None:
        raise click.ClickException(str(unreadable.error))
    raise RuntimeError("a command ran outside `mist` or `mistpipe`, which read the settings")


def read_password(prompt: str = "Password") -> str:
    """MIST_PASSWORD, else an interactive prompt: never a command-line argument."""
    password = client_settings().password
    if password:
        return password
    if not sys.stdin.isatty():
        raise click.ClickException("no password: set MIST_PASSWORD or run in a terminal to be asked")
    return getpass.getpass(f"{prompt}: ")


def read_new_password(prompt: str) -> str:
    """A password being set: MIST_PASSWORD, else asked twice in a terminal (a typo would lock the account out)."""
    password = read_password(prompt)
    if client_settings().password:
        return password
    if getpass.getpass("The same again: ") != password:
        raise click.ClickException("the two passwords differ; nothing was changed, run the command again")
    return password


def confirm_or_refuse(why: str, yes: bool, question: str) -> bool:
    """Whether to go on with something that drops most of a game: --yes, or a person in a terminal who says so."""
    if yes:
        return True
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        return False
    return click.confirm(f"{why}.\n{question}", default=False, err=True)


def tool_version() -> str:
    """The installed Mist's version, for `--version`."""
    return installed_version()


_LOCAL_HOSTS = ("localhost", "127.", "10.", "192.168.", "[::1]", "[fd", "[fe80")


def tracker_url(given: str) -> tuple[str, str]:
    """The tracker's address from what a person typed, and a note when it was changed.

    A tracker's address is its origin: a path (`/admin`, `/get`) is dropped. Without a scheme, a local or LAN
    address means http and any other name https, which is how a tracker is published (docs: Host it for friends).
    """
    text = given.strip()
    note = ""
    if "://" not in text:
        host = text.split("/")[0].lower()
        private = host.startswith(_LOCAL_HOSTS) or (
            host.startswith("172.") and host[4:6].isdigit() and 16 <= int(host[4:6]) <= 31
        )
        text = ("http://" if private or "." not in host.split(":")[0] else "https://") + text
        note = f"(no scheme given: using {text.split('://')[0]})"
    scheme, _, rest = text.partition("://")
    if scheme.lower() not in ("http", "https") or not rest or rest.startswith("/"):
        raise click.ClickException(
            f"{given!r} is not a tracker address; give one like https://mist.example.org or http://192.168.1.20:8700"
        )
    origin = f"{scheme.lower()}://{rest.split('/')[0]}"
    if rest.rstrip("/") != rest.split("/")[0]:
        note = f"(a tracker's address is its origin: using {origin})"
    return origin, note


def run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    """Run the command's coroutine; a Mist error becomes one line on stderr and exit code 1."""
    try:
        result: T = _runner()(coro_fn())
        return result
    except MistError as exc:
        raise click.ClickException(str(exc)) from exc
    except ExceptionGroup as group:  # concurrent tasks failed: report the first domain or disk error
        first = _first_mist_error(group)
        if first is None:
            raise
        raise click.ClickException(disk_error(first) if isinstance(first, OSError) else str(first)) from group
    except OSError as exc:  # the local disk: full, read-only, permissions
        raise click.ClickException(disk_error(exc)) from exc
    except KeyboardInterrupt:
        raise click.ClickException("interrupted; run the same command again to resume") from None


def _runner() -> Callable[..., Any]:
    """uvloop where it is installed: it moves chunk data through sockets markedly faster than asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        import asyncio

        return asyncio.run
    return uvloop.run


def disk_error(exc: OSError) -> str:
    """One line for a failure of the local disk, saying what to do; work done so far is kept for the next run."""
    where = f" ({exc.filename})" if exc.filename else ""
    if exc.errno == errno.ENOSPC:
        return f"the disk is full{where}; free some space and run the same command again to resume"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write{where}: {exc.strerror}; choose a folder you can write to"
    return f"{exc.strerror or exc}{where}; run the same command again to resume"


def _first_mist_error(group: BaseExceptionGroup) -> MistError | OSError | None:
    for exc in group.exceptions:
        if isinstance(exc, (MistError, OSError)):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            found = _first_mist_error(exc)
            if found:
                return found
    return None


def do_login(tool: str, url: str, user: str, expected_fingerprint: str | None = None, admin_only: bool = False) -> str:
    """Log in and pin the tracker's key; with `expected_fingerprint` (given by the admin out of band), only that key.

    `admin_only` (mistpipe): a friend's account is refused before anything is saved, since every admin
    command would refuse it afterwards.
    """
    from client import credentials
    from client.api import login as api_login
    from shared.signing import fingerprint

    url, note = tracker_url(url)
    if note:
        click.echo(note, err=True)
    password = read_password(f"Password for {user} at {url}")
    creds = run(lambda: api_login(url, user, password))
    if admin_only and creds.scope != "admin":
        raise click.ClickException(
            f"{creds.user} is not an admin account, and {tool} is the admin's tool; nothing "
            f"was saved. Friends use `mist login {url} --user {creds.user}`"
        )
    served = fingerprint(creds.public_key)
    if expected_fingerprint is not None and _bare(expected_fingerprint) != _bare(served):
        raise click.ClickException(
            f"the tracker at {creds.url} signs with key {served}, not {expected_fingerprint.strip()}; "
            "nothing was saved. Check the fingerprint with the admin: it may not be your tracker"
        )
    where = credentials.save(client_settings().home(), tool, creds, try_keychain=True)
    return (
        f"Logged in to {creds.url} as {creds.user} ({creds.scope}); tracker key {served}"
        f"{' (as expected)' if expected_fingerprint else ''}; tokens saved in {where}"
    )


def _bare(fp: str) -> str:
    """A fingerprint as typed or read out: case, spaces and dashes do not matter."""
    return "".join(c for c in fp.lower() if c.isalnum())


def session(tool: str) -> Api:
    from client import credentials
    from client.api import Api

    home = client_settings().home()
    creds = credentials.load(home, tool)
    return Api(
        creds,
        on_refresh=lambda c: credentials.save(home, tool, c),
        on_key_change=lambda notice: click.echo(notice, err=True),
        tool=tool,
    )


def emit(as_json: bool, obj: dict[str, Any], text: str) -> None:
    """One JSON object on stdout for scripts, or text for people."""
    if as_json:
        click.echo(json.dumps(obj))
    else:
        click.echo(text)
