"""`mist`: the friends' command line. Each command parses options and calls one Installer operation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click

from client import credentials
from client.commandline import do_login, emit, run, session
from client.home import mist_home
from client.installer import Installer, Outcome
from client.plan import PATCH
from client.progress import for_output, human
from client.state import State

TOOL = "mist"
T = TypeVar("T")


def _with_installer(as_json: bool, action: Callable[[Installer], Awaitable[T]]) -> T:
    async def go() -> T:
        state = State(mist_home())
        try:
            async with session(TOOL) as api:
                with for_output(as_json) as progress:
                    return await action(Installer(api, state, progress))
        finally:
            state.close()

    return run(go)


def _report(as_json: bool, outcome: Outcome, verb: str) -> None:
    via = ", ".join(f"{outcome.files_by_source[kind]} file(s) by {kind}" for kind in ("patch", "rdiff") if outcome.files_by_source[kind])
    emit(as_json, outcome.to_json(),
         f"{verb} {outcome.game} {outcome.version} in {outcome.seconds:.1f}s: downloaded {human(outcome.bytes_downloaded)}"
         f"{f' ({via})' if via else ''}, "
         f"wrote {human(outcome.bytes_written)}, reused {human(outcome.bytes_reused)} from disk, "
         f"{outcome.files_unchanged} files untouched.")


@click.group()
def main() -> None:
    """Mist: install and update your friends' games."""


@main.command()
@click.argument("url")
@click.option("--user", required=True, help="Your account name.")
def login(url: str, user: str) -> None:
    """Log in to the Mist server at URL (password from MIST_PASSWORD or a prompt)."""
    click.echo(do_login(TOOL, url, user), err=True)


@main.command()
def logout() -> None:
    """Forget the saved session."""
    click.echo("Logged out." if credentials.forget(mist_home(), TOOL) else "Was not logged in.", err=True)


@main.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for scripts.")
def ls(as_json: bool) -> None:
    """List the games you can install, with the version installed here."""

    async def go() -> dict:
        async with session(TOOL) as api:
            return await api.call("GET", "/api/games")

    listing = run(go)
    state = State(mist_home())
    installed = state.installed_versions()
    state.close()
    lines = []
    for g in listing["games"]:
        here = installed.get(g["slug"])
        g["installed"] = {"version": here[0], "dir": str(here[1])} if here else None
        latest = next((b for b in g["builds"] if b["version"] == g["latest"]), None)
        size = f"{human(latest['total_size'])}" if latest else "no builds"
        status = f"installed {here[0]} in {here[1]}" if here else "not installed"
        lines.append(f"{g['slug']:<20} {g['title']:<30} latest {g['latest'] or '-':<10} {size:>10}  {status}")
    emit(as_json, listing, "\n".join(lines) or "No games yet.")


@main.command()
@click.argument("game")
@click.option("--dir", "directory", required=True, type=click.Path(path_type=Path), help="Folder to install into.")
@click.option("--version", "version", default=None, help="Version to install (default: the newest).")
@click.option("--overwrite", is_flag=True, help="Replace files in the folder that are not from this game.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for scripts.")
def install(game: str, directory: Path, version: str | None, overwrite: bool, as_json: bool) -> None:
    """Install GAME into a folder; run it again to resume after an interruption."""
    _report(as_json, _with_installer(as_json, lambda i: i.install(game, directory, version, overwrite)), "Installed")


@main.command()
@click.argument("game")
@click.option("--to", "to", default=None, help="Version to move to, older or newer (default: the newest).")
@click.option("--dry-run", is_flag=True, help="Show what would change and stop.")
@click.option("--overwrite", is_flag=True, help="Replace files in the folder that are not from this game.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for scripts.")
def update(game: str, to: str | None, dry_run: bool, overwrite: bool, as_json: bool) -> None:
    """Move an installed GAME to another version, writing only the files that change."""
    result = _with_installer(as_json, lambda i: i.update(game, to, dry_run, overwrite))
    if isinstance(result, tuple):
        plan, routes = result
        planned = routes.bytes_by_source()
        lines = [f"{plan.target.game} {plan.target.version}: would write {len(plan.write)} files "
                 f"({human(plan.bytes_to_write)}), download about {human(sum(planned.values()))} "
                 f"({human(planned[PATCH])} as patches), remove {len(plan.delete)}, leave {len(plan.unchanged)} untouched"]
        files = []
        for f in plan.write:
            route = routes.get(f.path)
            how = (f"patch {human(route.bytes)} (chunks would be {human(route.chunk_bytes)})" if route.source == PATCH
                   else f"chunks {human(route.bytes)}" if route.bytes else "from disk")
            lines.append(f"  write  {f.path}  [{how}]")
            files.append({"path": f.path, "source": route.source if route.bytes or route.source == PATCH else "local",
                          "bytes": route.bytes, "chunk_bytes": route.chunk_bytes})
        lines += [f"  remove {p}" for p in plan.delete]
        if routes.coming:
            lines.append(f"  smaller patches are being made for {len(routes.coming)} file(s); updating later moves less")
        emit(as_json, {"game": game, "version": plan.target.version, "dry_run": True,
                       "plan": {**plan.to_json(), "bytes_by_source": planned, "patches_coming": len(routes.coming)},
                       "write": [f.path for f in plan.write], "files": files, "delete": list(plan.delete)},
             "\n".join(lines))
        return
    _report(as_json, result, "Updated")


@main.command()
@click.argument("game")
@click.option("--repair", is_flag=True, help="Fetch and rewrite the files that fail.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for scripts.")
def verify(game: str, repair: bool, as_json: bool) -> None:
    """Check every file of an installed GAME against its signed manifest."""
    report, outcome = _with_installer(as_json, lambda i: i.verify(game, repair))
    obj: dict[str, object] = {"game": game, "version": report.version, "ok": report.ok, "files_bad": report.files_bad}
    if outcome:
        obj["repaired"] = outcome.to_json()
    text = f"{game} {report.version}: all files intact." if report.ok else (
        f"{game} {report.version}: {len(report.files_bad)} damaged or missing: " + ", ".join(report.files_bad[:10])
        + (" (repaired)" if outcome else "; run `mist verify --repair`"))
    emit(as_json, obj, text)
    if not report.ok and not outcome:
        raise SystemExit(1)


@main.command()
@click.argument("game")
def uninstall(game: str) -> None:
    """Remove an installed GAME's files (your own files in its folder are left alone)."""
    removed = _with_installer(True, lambda i: i.uninstall(game))
    click.echo(f"Uninstalled {game} from {removed.dir}.")
