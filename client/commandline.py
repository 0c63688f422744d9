"""What `mist` and `mistpipe` share on the command line: passwords, sessions, errors, output."""

from __future__ import annotations

import asyncio
import errno
import getpass
import json
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from client import credentials
from client.api import Api, login as api_login
from client.home import mist_home
from shared.errors import MistError
from shared.signing import fingerprint

T = TypeVar("T")


def read_password(prompt: str = "Password") -> str:
    """MIST_PASSWORD, else an interactive prompt: never a command-line argument."""
    password = os.environ.get("MIST_PASSWORD")
    if password:
        return password
    if not sys.stdin.isatty():
        raise click.ClickException("no password: set MIST_PASSWORD or run in a terminal to be asked")
    return getpass.getpass(f"{prompt}: ")


def run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    """Run the command's coroutine; a Mist error becomes one line on stderr and exit code 1."""
    try:
        return _runner()(coro_fn())  # type: ignore[arg-type]
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


def do_login(tool: str, url: str, user: str, expected_fingerprint: str | None = None) -> str:
    """Log in and pin the tracker's key; with `expected_fingerprint` (given by the admin out of band), only that key."""
    password = read_password(f"Password for {user} at {url}")
    creds = run(lambda: api_login(url.rstrip("/"), user, password))
    served = fingerprint(creds.public_key)
    if expected_fingerprint is not None and _bare(expected_fingerprint) != _bare(served):
        raise click.ClickException(
            f"the tracker at {creds.url} signs with key {served}, not {expected_fingerprint.strip()}; "
            "nothing was saved. Check the fingerprint with the admin: it may not be your tracker"
        )
    where = credentials.save(mist_home(), tool, creds, try_keychain=True)
    return (f"Logged in to {creds.url} as {creds.user} ({creds.scope}); tracker key {served}"
            f"{' (as expected)' if expected_fingerprint else ''}; tokens saved in {where}")


def _bare(fp: str) -> str:
    """A fingerprint as typed or read out: case, spaces and dashes do not matter."""
    return "".join(c for c in fp.lower() if c.isalnum())


def session(tool: str) -> Api:
    home = mist_home()
    creds = credentials.load(home, tool)
    return Api(creds, on_refresh=lambda c: credentials.save(home, tool, c),
               on_key_change=lambda notice: click.echo(notice, err=True))


def emit(as_json: bool, obj: dict[str, Any], text: str) -> None:
    """One JSON object on stdout for scripts, or text for people."""
    if as_json:
        click.echo(json.dumps(obj))
    else:
        click.echo(text)

