"""`mist-server`: tracker, seeder and worker together, on SQLite and a directory store.

This is the embedded default of the README's first command: one machine, one
command, nothing else to install.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import IO

import click
from aiohttp import web

from seeder.app import SeederContext, make_app as make_seeder_app
from seeder.open_objects import raise_file_limit
from shared.errors import MistError
from shared.service.metrics import METRICS
from shared.logs import FORMAT_ENV
from shared.service.runner import die_with_parent, run
from shared.version import installed_version
from tracker import public_url
from tracker.app import make_app
from tracker.config import TrackerContext, open_locked
from tracker.settings import Settings
from tracker.routes.accounts import ensure_admin
from tracker.routes.swarm import SWARM
from shared.errors import SettingsError
from tracker.settings import ICE_ENV


def build_app(ctx: TrackerContext, seeder_processes: int = 0, host: str = "127.0.0.1", worker: bool = True) -> web.Application:
    """The tracker with the seeder mounted at /seeder, and (unless `worker` is False) the worker beside it.

    With `seeder_processes`, that many seeder processes of their own also serve on
    `ctx.settings.seeder_port`, and the tracker sends clients there. Tests that look at the job queue
    leave the worker out and run the jobs themselves, so no worker takes a job before they look.
    """
    app = make_app(ctx)
    seeder = SeederContext(
        ctx.store, ctx.signer.public_key, ctx.settings.clock, ended=ctx.sessions.ended, service=ctx.settings.service
    )
    app.add_subapp("/seeder", make_seeder_app(seeder, app[METRICS]))  # one /metrics for the whole process
    if worker:
        app.cleanup_ctx.append(_worker(ctx.settings.data, ctx.settings.service.logs("text")))
    if seeder_processes:
        app.cleanup_ctx.append(_seeders(ctx, host, seeder_processes))
    return app


def _seeders(ctx: TrackerContext, host: str, processes: int) -> Callable[[web.Application], AsyncIterator[None]]:
    """`mist-seeder --processes N` as a child on its own port, started and stopped with the server.

    Not N copies of the whole server: the tracker keeps its swarm, login throttle and patch
    jobs in memory, so it must stay one process; the seeder keeps nothing but its store.
    """

    async def run(_app: web.Application) -> AsyncIterator[None]:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "seeder.main",
                "--store",
                ctx.store.where,
                "--public-key",
                ctx.signer.public_key,
                "--host",
                host,
                "--port",
                str(ctx.settings.seeder_port),
                "--processes",
                str(processes),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=die_with_parent,
            env={**os.environ, FORMAT_ENV: ctx.settings.service.logs("text")},
        )  # relayed to a person's terminal
        try:
            await asyncio.to_thread(_relay_until_listening, process)
            yield
        finally:
            _stop(process, 15)

    return run


def _relay_until_listening(process: subprocess.Popen[str]) -> None:
    """Pass the seeders' log on to ours; return once they listen (the server says it runs only then)."""
    assert process.stderr is not None
    stream = process.stderr
    for line in stream:
        sys.stderr.write(line)
        if " listening on " in line:
            threading.Thread(target=_relay, args=(stream,), daemon=True).start()  # ends when the seeders do
            return
    raise SystemExit(f"Error: the seeder processes exited before they listened (exit code {process.wait()})")


def _worker(data: Path, log_format: str) -> Callable[[web.Application], AsyncIterator[None]]:
    """The worker runs beside the server as a child process, started and stopped with it."""

    async def run(_app: web.Application) -> AsyncIterator[None]:
        # Its log joins the server's (a Steam or Discord failure is said where the admin looks), as plain lines.
        process = subprocess.Popen(
            [sys.executable, "-m", "tracker.cli.mist_worker", "--data", str(data)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=die_with_parent,
            env={**os.environ, FORMAT_ENV: log_format},
        )
        assert process.stderr is not None
        threading.Thread(target=_relay, args=(process.stderr,), daemon=True).start()  # ends when the worker does
        try:
            yield
        finally:
            _stop(process, 10)

    return run


def _stop(process: subprocess.Popen[str], timeout: float) -> None:
    """SIGTERM, and SIGKILL if it has not exited within `timeout` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _relay(stream: IO[str]) -> None:
    for line in stream:
        sys.stderr.write(line)


def ice_hint(url: str, ice: list[dict[str, object]]) -> str:
    """For a server friends reach from other networks without STUN/TURN: how to give them one (coturn)."""
    host = urllib.parse.urlsplit(url).hostname or ""
    if ice or host in ("127.0.0.1", "::1", "localhost"):
        return ""
    return (
        f"Friends on other networks reach each other through STUN/TURN: run coturn on {host} (README, "
        f'"Host it for friends") and set {ICE_ENV}=\'[{{"urls": ["stun:{host}:3478"]}}]\'.'
    )


def _welcome(url: str, password: str | None, seeder_port: int = 0, data: Path = Path("data"), hint: str = "") -> str:
    lines = [f"Mist is running at {url}", "", f"Friends get the client at {url}/get", ""]
    if seeder_port:
        lines += [f"Chunks are served on port {seeder_port}: friends must reach it too.", ""]
    if hint:
        lines += [hint, ""]
    if password:
        lines += [
            "The admin account was created with this password (shown once, keep it):",
            f"    {password}",
            "",
        ]
    else:
        lines += [f"Lost the admin's password? On this machine: mist-admin reset-password admin --data {data}", ""]
    lines += [
        "Next, in another terminal (with the same virtualenv: . .venv/bin/activate):",
        f"    mistpipe login {url} --user admin",
        "    mistpipe new-game hollow --title 'Hollow Knight'",
        "    mistpipe push hollow ./path/to/build --version 1.0",
        "    MIST_PASSWORD=... mistpipe user add alice",
        f"    mist login {url} --user alice",
        "    mist install hollow      # into ~/Games/Mist/hollow, or --dir FOLDER",
        "    mist daemon      # keeps sharing with friends who install it next",
        "",
        "Stop the server with Ctrl-C.",
    ]
    return "\n".join(lines)


@click.command()
@click.version_option(installed_version(), message="%(prog)s %(version)s")
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    default=Path("data"),
    show_default=True,
    help="Directory for the database, the chunk store and the signing key.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on: 127.0.0.1 for this machine only, 0.0.0.0 for friends on the network.",
)
@click.option("--port", default=8700, show_default=True, type=int, help="Port of the tracker (and its seeder).")
@click.option(
    "--seeder-processes",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="Serve chunks from this many processes of their own on --seeder-port (0: in the server's process).",
)
@click.option("--seeder-port", default=None, type=int, help="Their port.  [default: --port + 1]")
@click.option(
    "--public-url",
    "configured_url",
    envvar=public_url.ENV,
    default="",
    help=f"Where friends reach this server (${public_url.ENV}), e.g. https://mist.example.org behind a proxy.  "
    "[default: the address listened on; with --host 0.0.0.0, this machine's LAN address]",
)
def main(data: Path, host: str, port: int, seeder_processes: int, seeder_port: int | None, configured_url: str) -> None:
    """Run the tracker, the seeder and the worker together (the embedded default)."""
    try:
        url = public_url.for_listener(host, port, configured_url)
    except public_url.PublicUrlError as exc:
        raise click.BadParameter(str(exc), param_hint="--public-url") from None
    try:
        settings = Settings.from_env(
            data.resolve(),
            seeder_port=(seeder_port or port + 1) if seeder_processes else 0,
            public_url=url,
            public_url_configured=bool(configured_url),
        )
        ctx = open_locked(settings)
    except (MistError, SettingsError) as exc:  # e.g. an unfinished restore: one line that says what to do
        raise click.ClickException(str(exc)) from exc
    raise_file_limit()  # friends' connections and the seeder's open objects; its children inherit it
    app = build_app(ctx, seeder_processes, host)
    hint = ice_hint(url, app[SWARM].ice)

    def ready() -> None:
        # The admin account is made only once the port is ours: a start that cannot listen must not make an
        # account whose password it never shows (`mist-admin reset-password` is the way back in regardless).
        print(_welcome(url, ensure_admin(ctx), settings.seeder_port, settings.data, hint), file=sys.stderr, flush=True)

    # Human-readable logs: its terminal is read by a person, who waits for the welcome below.
    run(app, host, port, on_ready=ready, log_format=settings.service.logs("text"))
