"""`mist-server`: tracker, seeder and worker together, on SQLite and a directory store.

This is the embedded default of the README's first command: one machine, one
command, nothing else to install.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import click
from aiohttp import web

from seeder.app import SeederContext, make_app as make_seeder_app
from tracker.accounts import ensure_admin
from tracker.app import make_app
from tracker.config import Settings, TrackerContext
from tracker.serve import die_with_parent, run


def build_app(ctx: TrackerContext) -> web.Application:
    app = make_app(ctx)
    app.add_subapp("/seeder", make_seeder_app(SeederContext(ctx.store, ctx.signer.public_key, ctx.settings.clock)))
    app.cleanup_ctx.append(_worker(ctx.settings.data))
    return app


def _worker(data: Path) -> Callable[[web.Application], AsyncIterator[None]]:
    """The worker runs beside the server as a child process, started and stopped with it."""

    async def run(_app: web.Application) -> AsyncIterator[None]:
        process = subprocess.Popen([sys.executable, "-m", "tracker.worker", "--data", str(data)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=die_with_parent)
        try:
            yield
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()

    return run


def _welcome(url: str, password: str | None) -> str:
    lines = [f"Mist is running at {url}", ""]
    if password:
        lines += [
            "The admin account was created with this password (shown once, keep it):",
            f"    {password}",
            "",
        ]
    lines += [
        "Next, in another terminal (with the same virtualenv: . .venv/bin/activate):",
        f"    mistpipe login {url} --user admin",
        "    mistpipe new-game hollow --title 'Hollow Knight'",
        "    mistpipe push hollow ./path/to/build --version 1.0",
        "    MIST_PASSWORD=... mistpipe user add alice",
        f"    mist login {url} --user alice",
        "    mist install hollow --dir ~/Games/hollow",
        "    mist daemon      # keeps sharing with friends who install it next",
        "",
        "Stop the server with Ctrl-C.",
    ]
    return "\n".join(lines)


@click.command()
@click.option("--data", type=click.Path(path_type=Path), default=Path("data"), show_default=True,
              help="Directory for the database, the chunk store and the signing key.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8700, show_default=True, type=int)
def main(data: Path, host: str, port: int) -> None:
    """Run the tracker, the seeder and the worker together (the embedded default)."""
    ctx = TrackerContext.open(Settings(data=data.resolve()))
    password = ensure_admin(ctx)
    url = f"http://{host}:{port}"
    run(build_app(ctx), host, port, on_ready=lambda: print(_welcome(url, password), file=sys.stderr, flush=True))
