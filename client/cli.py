"""`mist`: the friends' command line. Each command parses options and calls one Installer operation."""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from client.commandline import client_settings, confirm_or_refuse, do_login, emit, run, session, settings_at_start, tool_version
from client.daemon_address import read_address
from client.errors import DownloadFailed, NotConfirmed, ServerRefused, TrackerUnavailable
from client.progress import for_output, human
from shared.errors import MistError
from shared.wording import count

if TYPE_CHECKING:
    from client.installer import Installer
    from client.outcome import Outcome

# The engine (client.installer, client.api: aiohttp) is imported by the commands that use it, not here:
# `mist --help`, `mist ls` and `mist status` answer in a tenth of a second without it. So are the install
# database and the sharing settings, which an install handed to a running daemon does not read.

TOOL = "mist"
T = TypeVar("T")


def _with_installer(as_json: bool, action: Callable[[Installer], Awaitable[T]]) -> T:
    from client.installer import Installer
    from client.state import State

    async def go() -> T:
        state = State(client_settings().home())
        try:
            async with session(TOOL) as api:
                with for_output(as_json) as progress:
                    return await action(Installer(api, state, progress))
        finally:
            state.close()

    return run(go)


def _converge(as_json: bool, body: Mapping[str, object], action: Callable[[Installer], Awaitable[Outcome]]) -> None:
    """Install or update through the running daemon (its friends are connected already), or with a peer
    session of this command's own when no daemon runs, and say what it did. An update that would remove
    most of the install is confirmed first: --yes, or a person answering at the terminal."""
    home = client_settings().home()
    address = read_address(home)
    yes = bool(body.get("yes"))
    if address is not None:
        try:
            outcome = _handed(address.url, address.token, body, as_json)
        except NotConfirmed as exc:
            if not confirm_or_refuse(exc.why, yes, "Go ahead?"):
                raise click.ClickException(str(exc)) from None
            outcome = _handed(address.url, address.token, {**body, "yes": True}, as_json)
        _report(as_json, outcome)
        _leave()
    from client.installer import Installer
    from client.sharing_settings import caps_now, load_settings
    from client.state import State
    from client.swarm import peer_session  # here: only downloads need the swarm (and most commands not)

    settings = load_settings(home)

    async def go() -> Outcome:
        state = State(home)
        try:
            async with session(TOOL) as api, peer_session(api, settings.max_peers, caps_now(settings)[1]) as peers:
                with for_output(as_json) as progress:
                    installer = Installer(
                        api, state, progress, peers, confirm=lambda why: confirm_or_refuse(why, yes, "Go ahead?")
                    )
                    return await action(installer)
        finally:
            state.close()

    _report(as_json, run(go))


def _leave() -> NoReturn:
    """Exit now. An install handed to the daemon leaves nothing of this process to finish (no thread, no file
    open for writing, only what it printed), and tearing down every module it imported would add a tenth to
    a small install's time (26 ms: the same imports then a plain exit, against `os._exit`, 20 runs in turn)."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # a closed pipe: the ordinary exit reports it as it always has
        sys.exit(0)
    os._exit(0)


def _handed(url: str, token: str, body: Mapping[str, object], as_json: bool) -> Outcome:
    try:
        return _through_daemon(url, token, body, as_json)
    except NotConfirmed:
        raise
    except MistError as exc:
        raise click.ClickException(str(exc)) from exc
    except KeyboardInterrupt:
        raise click.ClickException("interrupted; run the same command again to resume") from None


def _through_daemon(url: str, token: str, body: Mapping[str, object], as_json: bool) -> Outcome:
    """Hand the install to the daemon and show what it says; the daemon pays no start-up, and this side
    imports no engine (the standard library's HTTP client reads the daemon's lines)."""
    from client.outcome import Outcome
    from client.plain_http import post_lines

    with for_output(as_json) as progress:
        bars = {}
        for item in post_lines(f"{url}/api/run", token, body):
            if "say" in item:
                progress.say(item["say"])
            elif "bar" in item:
                bars[item["bar"]] = progress.bar(item["description"], item["total"])
            elif "advance" in item:
                bars[item["advance"]].advance(item["bytes"])
            elif "result" in item:
                return Outcome(**item["result"])
            elif "error" in item:
                if "confirm" in item:
                    raise NotConfirmed(str(item["confirm"]))  # this terminal may say yes
                if "status" in item:
                    raise ServerRefused(int(item["status"]), str(item["error"]))
                raise MistError(str(item["error"]))
    raise DownloadFailed("the mist daemon stopped before it finished; run the same command again to resume")


_VERBS = {"install": "Installed", "update": "Updated", "downgrade": "Downgraded", "reinstall": "Repaired"}


def _report(as_json: bool, outcome: Outcome) -> None:
    if outcome.change == "current":
        emit(as_json, outcome.to_json(), f"{outcome.game} {outcome.version} is already up to date; nothing to download.")
        return
    via = ", ".join(
        f"{count(outcome.files_by_source[kind], 'file')} by {kind}"
        for kind in ("patch", "rdiff")
        if outcome.files_by_source[kind]
    )
    if outcome.bytes_from_peers:
        via = ", ".join(filter(None, [f"{human(outcome.bytes_from_peers)} from {count(outcome.peers_used, 'friend')}", via]))
    what = f"{outcome.game} {outcome.version}"
    if outcome.change in ("update", "downgrade") and outcome.previous_version != outcome.version:
        what = f"{outcome.game} from {outcome.previous_version} to {outcome.version}"
    emit(
        as_json,
        outcome.to_json(),
        f"{_VERBS.get(outcome.change, 'Updated')} {what} in {outcome.seconds:.1f}s: downloaded "
        f"{human(outcome.bytes_downloaded)}{f' ({via})' if via else ''}, wrote {human(outcome.bytes_written)}, "
        f"reused {human(outcome.bytes_reused)} from disk, {count(outcome.files_unchanged, 'file')} untouched.",
    )


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """--version, looked up only when asked (reading the package's metadata costs every other command 20 ms)."""
    if value and not ctx.resilient_parsing:
        click.echo(f"{TOOL} {tool_version()}")
        ctx.exit()


@click.group()
@click.option(
    "--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version, help="Show the version and exit."
)
@click.pass_context
def main(ctx: click.Context) -> None:
    """Mist: install and update your friends' games."""
    ctx.obj = settings_at_start()


@main.command()
@click.argument("url")
@click.option("--user", required=True, help="Your account name.")
@click.option(
    "--fingerprint",
    default=None,
    help="Accept only a tracker key with this fingerprint (the admin gives it to you after replacing the key).",
)
def login(url: str, user: str, fingerprint: str | None) -> None:
    """Log in to the Mist server at URL (password from MIST_PASSWORD or a prompt)."""
    click.echo(do_login(TOOL, url, user, fingerprint), err=True)


@main.command()
def logout() -> None:
    """Forget the saved session."""
    from client import credentials

    click.echo("Logged out." if credentials.forget(client_settings().home(), TOOL) else "Was not logged in.", err=True)


@main.command("ls")
@click.argument("game", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for scripts.")
def ls(game: str | None, as_json: bool) -> None:
    """List the games you can install, with the version installed here; or GAME's versions and release notes.

    With the tracker out of reach, it lists what is installed here and says so.
    """

    from client.state import State

    path = f"/api/games/{game}" if game else "/api/games"

    async def go() -> dict[str, Any]:
        async with session(TOOL) as api:
            return await api.call("GET", path)

    state = State(client_settings().home())
    installed = state.installed_versions()
    state.close()
    try:
        answer = _quick_tracker_get(path)
        if answer is None:
            answer = run(go)
        listing = {"games": [answer]} if game else answer
    except click.ClickException as exc:
        if not isinstance(exc.__cause__, TrackerUnavailable):
            raise
        _offline_ls(as_json, installed, game, str(exc.__cause__))
        return
    lines = []
    for g in listing["games"]:
        here = installed.get(g["slug"])
        g["installed"] = {"version": here[0], "dir": str(here[1])} if here else None
        latest = next((b for b in g["builds"] if b["version"] == g["latest"]), None)
        size = f"{human(latest['total_size'])}" if latest else "no builds"
        status = f"installed {here[0]} in {here[1]}" if here else "not installed"
        lines.append(f"{g['slug']:<20} {g['title']:<30} latest {g['latest'] or '-':<10} {size:>10}  {status}")
        if game:
            for b in reversed(g["builds"]):
                mark = "  (installed here)" if here and here[0] == b["version"] else ""
                lines.append(f"  {b['version']:<12} {human(b['total_size']):>10}  {b['created_at'][:10]}{mark}")
                lines += [f"      {line}" for line in b.get("notes", "").splitlines()]
    emit(as_json, listing, "\n".join(lines) or "No games yet.")


def _quick_tracker_get(path: str) -> Any | None:
    """The tracker's answer without the engine's HTTP client, when the saved session allows it (else None)."""
    from client import credentials
    from client.plain_http import tracker_get

    try:
        creds = credentials.load(client_settings().home(), TOOL)
    except MistError as exc:
        raise click.ClickException(str(exc)) from exc
    return tracker_get(creds, path, TOOL)


def _offline_ls(as_json: bool, installed: Mapping[str, tuple[str, Path]], game: str | None, why: str) -> None:
    """`mist ls` from the install database alone, when the tracker cannot be reached."""
    here = [(slug, version, folder) for slug, (version, folder) in sorted(installed.items()) if game in (None, slug)]
    games = [{"slug": slug, "installed": {"version": version, "dir": str(folder)}} for slug, version, folder in here]
    lines = [f"The tracker is out of reach ({why}); installed here:"]
    lines += [f"{slug:<20} installed {version} in {folder}" for slug, version, folder in here]
    if not games:
        lines.append("  nothing")
    emit(as_json, {"games": games, "offline": True, "error": why}, "\n".join(lines))


@main.command()
@click.argument("game")
@click.option(
    "--dir",
    "directory",
    default=None,
    type=click.Path(path_type=Path),
    help="Folder to install into.  [default: GAME in your games folder, see `mist settings`]",
)
@click.option("--version", "version", default=None, help="Version to install (default: the newest).")
@click.option("--overwrite", is_flag=True, help="Replace files in the folder that are not from this game.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for scripts.")
def install(game: str, directory: Path | None, version: str | None, overwrite: bool, as_json: bool) -> None:
    """Install GAME into a folder; run it again to resume after an interruption."""
    if directory is None:
        from client.games_folder import folder_name, games_folder

        directory = games_folder(client_settings().home()) / folder_name(game)
    folder = directory.expanduser().resolve()
    body = {"op": "install", "game": game, "dir": str(folder), "version": version, "overwrite": overwrite}
    _converge(as_json, body, lambda i: i.install(game, folder, version, overwrite))


@main.command()
@click.argument("game")
@click.option("--to", "--version", "to", default=None, help="Version to move to, older or newer (default: the newest).")
@click.option("--dry-run", is_flag=True, help="Show what would change and stop.")
@click.option("--overwrite", is_flag=True, help="Replace files in the folder that are not from this game.")
@click.option("--yes", is_flag=True, help="Go ahead even if the new version removes most of the installed files.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for scripts.")
def update(game: str, to: str | None, dry_run: bool, overwrite: bool, yes: bool, as_json: bool) -> None:
    """Move an installed GAME to another version, writing only the files that change."""
    if not dry_run:
        body = {"op": "update", "game": game, "to": to, "overwrite": overwrite, "yes": yes}
        _converge(as_json, body, lambda i: i.converge(game, to, overwrite))
        return
    result = _with_installer(as_json, lambda i: i.update(game, to, dry_run, overwrite))
    if isinstance(result, tuple):
        from client.plan import estimate_download
        from shared.plan_wire import BUNDLE, PATCH

        plan, routes = result
        planned = estimate_download(plan, routes)
        lines = [
            f"{plan.target.game} {plan.target.version}: would write {count(len(plan.write), 'file')} "
            f"({human(plan.bytes_to_write)}), download about {human(sum(planned.values()))} "
            f"({human(planned[PATCH])} as patches), reuse {human(plan.bytes_local)} from disk, need "
            f"{human(plan.peak_extra_disk)} extra disk until the swap, remove {len(plan.delete)}, leave "
            f"{len(plan.unchanged)} untouched"
        ]
        files = []
        for f in plan.write:
            route = routes.get(f.path)
            chain = f" in {len(route.steps)} steps" if len(route.steps) > 1 else ""
            how = (
                f"patch {human(route.bytes)}{chain} (chunks would be {human(route.chunk_bytes)})"
                if route.source == PATCH
                else f"patch bundle {human(route.bytes)} (chunks would be {human(route.chunk_bytes)})"
                if route.source == BUNDLE
                else f"chunks {human(route.bytes)}"
                if route.bytes
                else "from disk"
            )
            lines.append(f"  write  {f.path}  [{how}]")
            files.append(
                {
                    "path": f.path,
                    "source": route.source if route.bytes or route.source in (PATCH, BUNDLE) else "local",
                    "bytes": route.bytes,
                    "chunk_bytes": route.chunk_bytes,
                    "patches": len(route.steps),
                }
            )
        lines += [f"  remove {p}" for p in plan.delete]
        lines += [f"  link   {e.path} -> {e.target}" for e in plan.links]
        if routes.coming:
            lines.append(f"  smaller patches are being made for {count(len(routes.coming), 'file')}; updating later moves less")
        emit(
            as_json,
            {
                "game": game,
                "version": plan.target.version,
                "dry_run": True,
                "plan": {**plan.to_json(), "bytes_by_source": planned, "patches_coming": len(routes.coming)},
                "write": [f.path for f in plan.write],
                "files": files,
                "delete": list(plan.delete),
                "links": [{"path": e.path, "target": e.target} for e in plan.links],
            },
            "\n".join(lines),
        )
        return
    _report(as_json, result)


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
    text = (
        f"{game} {report.version}: all files intact."
        if report.ok
        else (
            f"{game} {report.version}: {len(report.files_bad)} damaged or missing: "
            + ", ".join(report.files_bad[:10])
            + (" (repaired)" if outcome else f"; `mist verify {game} --repair` fixes them")
        )
    )
    emit(as_json, obj, text)
    if not report.ok and not outcome:
        raise SystemExit(1)


@main.command()
@click.argument("game")
def uninstall(game: str) -> None:
    """Remove an installed GAME's files (your own files in its folder are left alone)."""
    removed, kept = _with_installer(True, lambda i: i.uninstall(game))
    left = (
        (f" Left {count(len(kept), 'file')} you changed: " + ", ".join(kept[:5]) + (", ..." if len(kept) > 5 else "") + ".")
        if kept
        else ""
    )
    click.echo(f"Uninstalled {game} from {removed.dir}.{left}")
    _poke_daemon()


@main.command()
@click.option(
    "--games-folder",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where `mist install` puts a game when --dir is not given (each in a folder of its name).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for scripts.")
def settings(games_folder: Path | None, as_json: bool) -> None:
    """Show or change this client's settings (sharing has its own command: `mist share`)."""
    from client import games_folder as folders  # the option's name hides the function of that name

    home = client_settings().home()
    try:
        folder = folders.set_games_folder(home, games_folder) if games_folder is not None else folders.games_folder(home)
    except MistError as exc:
        raise click.ClickException(str(exc)) from exc
    emit(
        as_json,
        {"games_folder": str(folder), "home": str(home)},
        f"Games folder: {folder} (new installs go into a folder per game there)\nClient data: {home}",
    )


def _poke_daemon() -> None:
    """A running daemon re-reads the installs, so it stops offering what was removed."""
    address = read_address(client_settings().home())
    if address is not None:
        from client.api import local_call

        try:
            run(lambda: local_call(f"{address.url}/api/refresh", address.token, "POST"))
        except click.ClickException:
            pass  # it re-reads them after its next install anyway


@main.command()
@click.option("--port", default=0, show_default=True, type=int, help="Port of the local API on 127.0.0.1 (0: any free one).")
def daemon(port: int) -> None:
    """Stay online: share your installed games with friends, serve the app, and run installs for the mist command."""
    settings_read = client_settings()
    home = settings_read.home()
    if read_address(home) is not None:
        raise click.ClickException(f"a mist daemon already runs for {home}; `mist status` shows it")

    async def go() -> None:
        from client import sharing_settings
        from client.daemon import Daemon, log, log_to_stderr, saved_login  # here: its server and sharing cost time
        from client.state import State

        log_to_stderr(settings_read.log_format or "text")  # its terminal or daemon.log; MIST_LOG_FORMAT=json for JSON

        state = State(home)
        try:
            settings = sharing_settings.load_settings(home)
            service = Daemon(home, state, settings)
            creds = saved_login(home)
            if creds is not None:
                service.resume(creds)

            def ready(address: object) -> None:
                up, down = sharing_settings.caps_now(settings)
                signed = "" if creds else "; signed out: sign in with `mist app` or `mist login`"
                log.info(
                    f"mist daemon for {home}: local API at {getattr(address, 'url')}; sharing "
                    f"{'on' if settings.enabled else 'off'} (upload {sharing_settings.format_rate(up)}, "
                    f"download {sharing_settings.format_rate(down)}, up to {settings.max_peers} friends)"
                    f"{signed}. Ctrl-C stops it."
                )

            await service.run(port, ready)
        finally:
            state.close()

    run(go)


@main.command()
@click.option("--browser", is_flag=True, help="Open the app in the default browser instead of its own window.")
@click.option("--print-url", is_flag=True, help="Print a one-time address that opens the signed-in app in any browser.")
@click.option("--install-desktop-entry", is_flag=True, help="Linux: add Mist to the applications menu, then stop.")
def app(browser: bool, print_url: bool, install_desktop_entry: bool) -> None:
    """Open the Mist app (starting the daemon if it is not running)."""
    from client.app import desktop, launch, window  # here: only `mist app` needs them

    if browser and print_url:
        raise click.ClickException("choose one of --browser and --print-url")
    if install_desktop_entry:
        click.echo(f"Mist is in the applications menu now ({desktop.install_desktop_entry()}).")
        return
    try:
        address = launch.ensure_daemon(client_settings().home())
    except MistError as exc:
        raise click.ClickException(str(exc)) from exc
    url = run(lambda: launch.one_time_url(address))
    if print_url:
        click.echo(url)
        return
    why = None if browser else window.unavailable()
    if browser or why is not None:
        if why is not None:
            click.echo(f"No Mist window here: {why}; opening the browser instead.", err=True)
        if not launch.open_in_browser(url):
            click.echo(f"No browser could be opened; open this address once in yours: {url}", err=True)
        return
    window.show(url)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for scripts.")
def status(as_json: bool) -> None:
    """Show whether the daemon runs, what it shares, the friends connected to it, and recent news."""
    from client import sharing_settings

    home = client_settings().home()
    address = read_address(home)
    settings = sharing_settings.load_settings(home)
    if address is None:
        emit(
            as_json,
            {"running": False, "sharing": sharing_settings.to_json(settings), "peers": [], "news": []},
            "The mist daemon is not running: friends cannot download from you. `mist daemon` starts it.",
        )
        return
    from client.plain_http import get_json

    info = get_json(f"{address.url}/api/status", address.token)
    if info is None:  # the engine's client words the failure
        from client.api import local_call

        info = run(lambda: local_call(f"{address.url}/api/status", address.token))
    info["running"] = True
    info.setdefault("news", [])  # a daemon started before the mist that knows news
    lines = [
        f"mist daemon running (pid {info['pid']}), "
        + ("connected to the tracker" if info["connected"] else f"not connected to the tracker ({info['tracker_error']})"),
        f"Sharing {'on' if settings.enabled else 'off'}: {count(len(info['builds_shared']), 'build')}; upload cap "
        f"now {sharing_settings.format_rate(info['upload_cap_now'])}, download cap now "
        f"{sharing_settings.format_rate(info['download_cap_now'])}; uploaded {human(info['bytes_uploaded'])} since start",
        f"{count(len(info['peers']), 'friend')} connected" + (":" if info["peers"] else "."),
    ]
    lines += [f"  {p['user']:<16} {p['game']:<20} {count(p['chunks'], 'chunk')}, {human(p['bytes'])}" for p in info["peers"]]
    if info.get("downloads"):
        lines.append("Downloads (the app's queue):")
        lines += [f"  {d['title']:<24} {d['op']:<8} {d['state']:<12} {d['percent']}%" for d in info["downloads"]]
    if info["news"]:
        lines.append("News:")
        for n in reversed(info["news"]):
            lines.append(f"  {time.strftime('%H:%M', time.localtime(n['at']))}  {n['text']}")
            lines += [f"         {line}" for line in str(n.get("notes", "")).splitlines()[:5]]
    emit(as_json, info, "\n".join(lines))


@main.command()
@click.argument("switch", required=False, type=click.Choice(["on", "off"]))
@click.option("--upload-cap", help="Most bytes/s friends may take from you: 1MB, 500KB, unlimited.")
@click.option("--download-cap", help="Most bytes/s this client downloads: 10MB, unlimited.")
@click.option("--max-peers", type=click.IntRange(0, 64), help="Friends served at once.")
@click.option(
    "--schedule", "windows", multiple=True, help="Other caps for a daily window: '23:00-07:00 up=unlimited down=unlimited'."
)
@click.option("--no-schedule", is_flag=True, help="Remove every window.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for scripts.")
def share(
    switch: str | None,
    upload_cap: str | None,
    download_cap: str | None,
    max_peers: int | None,
    windows: tuple[str, ...],
    no_schedule: bool,
    as_json: bool,
) -> None:
    """Show or change what you share with friends (a running daemon applies changes within seconds)."""
    from client import sharing_settings

    home = client_settings().home()
    try:
        current = sharing_settings.load_settings(home)
        changes: dict[str, object] = {}
        if switch:
            changes["enabled"] = switch == "on"
        if upload_cap is not None:
            changes["upload_cap"] = sharing_settings.parse_rate(upload_cap)
        if download_cap is not None:
            changes["download_cap"] = sharing_settings.parse_rate(download_cap)
        if max_peers is not None:
            changes["max_peers"] = max_peers
        if no_schedule or windows:
            changes["schedule"] = tuple(sharing_settings.parse_window(w) for w in windows)
        if changes:
            current = dataclasses.replace(current, **changes)  # type: ignore[arg-type]  # Sharing.__post_init__ checks every value
            sharing_settings.save(home / sharing_settings.SETTINGS_FILE, current)
    except MistError as exc:
        raise click.ClickException(str(exc)) from exc
    up, down = sharing_settings.caps_now(current)
    lines = [
        f"Sharing {'on' if current.enabled else 'off'}; upload cap {sharing_settings.format_rate(current.upload_cap)}, "
        f"download cap {sharing_settings.format_rate(current.download_cap)}, up to {current.max_peers} friends at once"
    ]
    lines += [
        f"  {w.start:%H:%M}-{w.end:%H:%M}: upload {sharing_settings.format_rate(w.upload_cap)}, download "
        f"{sharing_settings.format_rate(w.download_cap)}"
        for w in current.schedule
    ]
    lines.append(f"Now: upload {sharing_settings.format_rate(up)}, download {sharing_settings.format_rate(down)}")
    emit(as_json, sharing_settings.to_json(current), "\n".join(lines))
