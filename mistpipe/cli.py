"""`mistpipe`: the admin's command line. Each command parses options and calls one library function."""

from __future__ import annotations

import time
from typing import Any
from pathlib import Path

import click

from client import credentials
from client.commandline import (
    client_settings,
    confirm_or_refuse,
    do_login,
    emit,
    read_new_password,
    run,
    session,
    settings_at_start,
    tool_version,
)
from client.progress import for_output, human
from mistpipe.invite import invitation_text, invite as make_invitation
from shared.wording import count
from mistpipe.maintenance import collect_garbage, remove_build, resync_steam, scrub_store, wait_for_job
from mistpipe.push import PushResult, push as push_build
from mistpipe.scancache import FILE_NAME as SCAN_CACHE, ScanCache

TOOL = "mistpipe"


@click.group()
@click.version_option(tool_version(), prog_name=TOOL, message="%(prog)s %(version)s")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Mist's admin tool: create games, push builds, manage friends' accounts."""
    ctx.obj = settings_at_start()


@main.command()
@click.argument("url")
@click.option("--user", required=True, help="Your admin account.")
@click.option(
    "--fingerprint",
    default=None,
    help="Accept only a tracker key with this fingerprint (the admin gives it to you after replacing the key).",
)
def login(url: str, user: str, fingerprint: str | None) -> None:
    """Log in to the Mist server at URL (password from MIST_PASSWORD or a prompt); an admin account only."""
    click.echo(do_login(TOOL, url, user, fingerprint, admin_only=True), err=True)


@main.command()
def logout() -> None:
    """Forget the saved session."""
    click.echo("Logged out." if credentials.forget(client_settings().home(), TOOL) else "Was not logged in.", err=True)


@main.command("new-game")
@click.argument("slug")
@click.option("--title", required=True, help="The name friends see.")
@click.option("--private", is_flag=True, help="Only friends you `grant` it to can see it.")
def new_game(slug: str, title: str, private: bool) -> None:
    """Create the game SLUG (lowercase letters, digits, '-')."""

    async def go() -> dict[str, Any]:
        async with session(TOOL) as api:
            return await api.call("POST", "/api/games", json={"slug": slug, "title": title, "private": private})

    game = run(go)
    click.echo(f"Created {'private game ' if game['private'] else ''}{game['slug']} ({game['title']}).")


@main.command()
@click.argument("name")
@click.argument("game")
def grant(name: str, game: str) -> None:
    """Let the account NAME see and install the private GAME."""

    async def go() -> dict[str, Any]:
        async with session(TOOL) as api:
            return await api.call("POST", f"/api/games/{game}/grants", json={"user": name})

    run(go)
    click.echo(f"{name} may now install {game}.")


@main.command()
@click.argument("name")
@click.argument("game")
def revoke(name: str, game: str) -> None:
    """Take GAME away from NAME: no new tickets from now on."""

    async def go() -> dict[str, Any]:
        async with session(TOOL) as api:
            return await api.call("DELETE", f"/api/games/{game}/grants/{name}")

    run(go)
    click.echo(f"{name} can no longer fetch {game}.")


def _notes(notes: str | None, notes_file: Path | None) -> str | None:
    """Release notes from --notes or --notes-file (one of them), or None when neither was given."""
    if notes is not None and notes_file is not None:
        raise click.UsageError("give --notes or --notes-file, not both")
    if notes_file is None:
        return notes
    try:
        return notes_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"cannot read {notes_file} as UTF-8 text ({exc})", param_hint="--notes-file") from exc


NOTES = click.option("--notes", default=None, help="Release notes for the build: what changed, for friends.")
NOTES_FILE = click.option(
    "--notes-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Read the release notes from this UTF-8 text file.",
)


@main.command()
@click.argument("game")
@click.argument("folder", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--version", "version", required=True, help="The new build's version, like 1.0.2.")
@NOTES
@NOTES_FILE
@click.option(
    "--launch",
    default="",
    help="How Play starts it: a program of the build and its arguments, "
    "like 'bin/game --fullscreen' (default: the game's; the first one given becomes the game's).",
)
@click.option("--level", default=9, show_default=True, type=click.IntRange(1, 22), help="zstd level for new chunks.")
@click.option("--wait", is_flag=True, help="Return only once the new build's patches are made.")
@click.option("--yes", is_flag=True, help="Push even if the build drops most of the files or bytes of the latest one.")
@click.option(
    "--rescan",
    is_flag=True,
    help="Read and chunk every file, even those unchanged (by size, time and file id) since the last push from this machine.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for scripts.")
def push(
    game: str,
    folder: Path,
    version: str,
    notes: str | None,
    notes_file: Path | None,
    launch: str,
    level: int,
    wait: bool,
    yes: bool,
    rescan: bool,
    as_json: bool,
) -> None:
    """Push FOLDER as VERSION of GAME, uploading only chunks the server lacks."""
    started = time.monotonic()
    text_notes = _notes(notes, notes_file) or ""

    async def go() -> PushResult:
        cache = ScanCache(client_settings().home() / SCAN_CACHE)
        try:
            async with session(TOOL) as api:
                with for_output(as_json) as progress:
                    return await push_build(
                        api,
                        game,
                        folder,
                        version,
                        progress,
                        level,
                        wait,
                        text_notes,
                        launch,
                        confirm=lambda why: confirm_or_refuse(why, yes, "Push it anyway?"),
                        cache=cache,
                        rescan=rescan,
                    )
        finally:
            cache.close()

    result = run(go)
    made = result.patches
    text = (
        f"Pushed {game} {result.version}: {count(result.files, 'file')}, {human(result.bytes_total)}; "
        f"uploaded {result.chunks_uploaded} of {count(result.chunks_total, 'chunk')} ({human(result.bytes_uploaded)}); "
        f"read {count(result.files_read, 'file')} ({human(result.bytes_read)})"
        + (", the others unchanged since the last push." if result.files_read < result.files else ".")
    )
    if made is not None:
        text += "\n" + _patches_text(made)
    elif result.patch_job and result.patches_coming:
        text += (
            f"\nMaking {count(result.patches_coming, 'patch', 'patches')} for friends who update: job "
            f"{result.patch_job} (`mistpipe job {result.patch_job} --wait` waits for it)."
        )
    elif result.patch_job:  # a first build, or no changed file a patch would serve: the job only announces it
        text += (
            f"\nNo patches to make for this build (friends fetch its new chunks): job {result.patch_job} "
            f"(`mistpipe job {result.patch_job} --wait` waits for it)."
        )
    emit(
        as_json,
        {
            "version": result.version,
            "files": result.files,
            "bytes_total": result.bytes_total,
            "chunks_total": result.chunks_total,
            "chunks_asked": result.chunks_asked,
            "chunks_uploaded": result.chunks_uploaded,
            "bytes_uploaded": result.bytes_uploaded,
            "digest": result.digest,
            "files_read": result.files_read,
            "bytes_read": result.bytes_read,
            "manifest_bytes": result.manifest_bytes,
            "patch_job": result.patch_job,
            "patches_coming": result.patches_coming,
            **({"patches": made} if made is not None else {}),
            **({"warning": result.warning} if result.warning else {}),
            "seconds": round(time.monotonic() - started, 3),
        },
        text,
    )


def _patches_text(made: dict[str, Any]) -> str:
    if made.get("error"):
        return f"No patches: {made['error']}."
    count = made.get("made", 0)
    text = (
        (
            f"Made {count} patch{'' if count == 1 else 'es'} ({human(made.get('patch_bytes', 0))} for friends "
            f"to fetch instead of {human(made.get('chunk_bytes', 0))} of chunks)"
        )
        if count
        else "No patches worth making"
    )
    return text + (f"; {made['failed']} could not be made (run `mistpipe scrub`)" if made.get("failed") else "") + "."


@main.command("rm")
@click.argument("game")
@click.argument("version")
@click.option("--wait", is_flag=True, help="Return only once the garbage collector has removed what no build needs.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for scripts.")
def rm(game: str, version: str, wait: bool, as_json: bool) -> None:
    """Remove VERSION of GAME; chunks and patches no remaining build needs are then removed from the store."""

    async def go() -> dict[str, Any]:
        async with session(TOOL) as api:
            return await remove_build(api, game, version, wait)

    removed = run(go)
    gc = removed["gc"]
    if removed.get("warning"):
        after = f"Warning: {removed['warning']}."
    elif gc["done"]:
        after = _gc_text(gc["result"])
    else:
        after = f"Its chunks are being collected (job {gc['job']})."
    emit(as_json, removed, f"Removed {game} {version}. {after}")


@main.command()
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait for the collection to finish and show its report.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for scripts.")
def gc(wait: bool, as_json: bool) -> None:
    """Remove the chunks and patches no build needs now (the worker also does it nightly)."""

    async def go() -> dict[str, Any]:
        async with session(TOOL) as api:
            return await collect_garbage(api, wait)

    report = run(go)
    emit(as_json, report, _gc_text(report["result"]) if report["done"] else f"Garbage collection queued as job {report['job']}.")


@main.command()
@click.argument("job_id", metavar="JOB")
@click.option("--wait", is_flag=True, help="Return only once the worker has finished the job.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for scripts.")
def job(job_id: str, wait: bool, as_json: bool) -> None:
    """Show a background job's result (the job ids that push, rm and gc print)."""

    async def go() -> dict[str, Any]:
        async with session(TOOL) as api:
            return await wait_for_job(api, job_id, wait, first_look=True)

    status = run(go)
    emit(as_json, status, f"Job {job_id}: " + (_job_text(status["result"]) if status["done"] else "not finished yet"))


def _job_text(result: object) -> str:
    """A finished job's result as lines a person reads (the JSON is `--json`'s)."""
    if not isinstance(result, dict):
        return f"done: {result}"
    if result.get("error"):
        return f"failed: {result['error']}"
    if "objects_removed" in result:
        return "done. " + _gc_text(result)
    if "pairs" in result:
        return "done. " + _patches_text(result)
    if "checked" in result:
        return f"done. Checked {count(result['checked'], 'object')}: {len(result.get('corrupt', []))} damaged."
    shown = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in result.items() if not isinstance(v, (dict, list)))
    return f"done. {shown}." if shown else "done."


def _gc_text(result: dict[str, Any]) -> str:
    if result.get("error"):
        return f"Garbage collection stopped: {result['error']}"
    young = f"; {result['objects_young']} unused but too recent to remove" if result["objects_young"] else ""
    return (
        f"Removed {count(result['objects_removed'], 'object')} no build needs from the store ({human(result['bytes_freed'])} "
        f"freed); kept {result['objects_kept']}{young}."
    )


@main.command("ls")
@click.argument("game", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for scripts.")
def ls(game: str | None, as_json: bool) -> None:
    """List the games, or the builds of GAME."""

    async def go() -> dict[str, Any]:
        async with session(TOOL) as api:
            if game:
                return {"games": [await api.call("GET", f"/api/games/{game}")]}
            return await api.call("GET", "/api/games")

    listing = run(go)
    lines = []
    for g in listing["games"]:
        lines.append(
            f"{g['slug']}  {g['title']}  (latest: {g['latest'] or 'none'}){'  private' if g['private'] else ''}"
            + (f"  launch: {g['launch']}" if g.get("launch") else "")
        )
        if g.get("steam_error"):
            lines.append(f"    Steam details not fetched: {g['steam_error']} (`mistpipe resync-steam {g['slug']}` retries)")
        for b in g["builds"]:
            lines.append(
                f"    {b['version']:<12} {human(b['total_size']):>10}  {count(b['files'], 'file')}, "
                f"{human(b['stored_size'])} stored  {b['created_at']}"
                + (f"  launch: {b['launch']}" if b.get("launch_from") == "build" else "")
                + (f"  Discord: {b['news_status']}" if b.get("news_status") not in (None, "", "posted") else "")
            )
            if game and b.get("notes"):
                lines += [f"        {line}" for line in b["notes"].splitlines()]
    emit(as_json, listing, "\n".join(lines) or "No games yet: `mistpipe new-game SLUG --title TITLE`.")


@main.group()
def user() -> None:
    """Manage friends' accounts."""


@user.command("add")
@click.argument("name")
@click.option("--admin", "is_admin", is_flag=True, help="Give the account admin rights.")
def user_add(name: str, is_admin: bool) -> None:
    """Create the account NAME (its password from MIST_PASSWORD or a prompt, asked twice)."""
    password = read_new_password(f"Password for the new account {name}")

    async def go() -> dict[str, Any]:
        async with session(TOOL) as api:
            return await api.call("POST", "/api/users", json={"name": name, "password": password, "admin": is_admin})

    created = run(go)
    click.echo(f"Created {'admin ' if created['admin'] else ''}account {created['name']}.")


@main.command()
@click.argument("name")
@click.option("--days", default=7, show_default=True, type=click.IntRange(1, 30), help="How long the link works.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for scripts.")
def invite(name: str, days: int, as_json: bool) -> None:
    """Make a one-time link with which a friend creates the account NAME and picks its password."""

    async def go() -> dict[str, Any]:
        async with session(TOOL) as api:
            return await make_invitation(api, name, days)

    made = run(go)
    emit(as_json, made, invitation_text(made))


@main.command()
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait for the scrub to finish and show its report.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for scripts.")
def scrub(wait: bool, as_json: bool) -> None:
    """Check every stored chunk now; damaged ones are set aside so the next push uploads them again."""

    async def go() -> dict[str, Any]:
        async with session(TOOL) as api:
            return await scrub_store(api, wait)

    report = run(go)
    result = report.get("result") or {}
    text = (
        f"Scrub queued as job {report['job']}."
        if not report["done"]
        else f"Checked {count(result['checked'], 'object')}: {len(result['corrupt'])} damaged and set aside"
        + (
            f" ({', '.join(h[:12] for h in result['corrupt'][:5])}); push the builds that have them again"
            if result["corrupt"]
            else ""
        )
        + "."
    )
    emit(as_json, report, text)


@user.command("passwd")
@click.argument("name")
def user_passwd(name: str) -> None:
    """Set NAME's password (from MIST_PASSWORD or a prompt, asked twice); their sessions end at once."""
    password = read_new_password(f"New password for {name}")

    async def go() -> dict[str, Any]:
        async with session(TOOL) as api:
            return await api.call("POST", f"/api/users/{name}/password", json={"password": password})

    run(go)
    click.echo(f"Password of {name} changed; their sessions ended now, they log in again with the new one.")


@user.command("disable")
@click.argument("name")
def user_disable(name: str) -> None:
    """Stop NAME from logging in and end their sessions now (downloads under way stop too)."""

    async def go() -> dict[str, Any]:
        async with session(TOOL) as api:
            return await api.call("POST", f"/api/users/{name}/disable")

    run(go)
    click.echo(f"Disabled {name}: their sessions ended now. `mistpipe user enable {name}` lets them log in again.")


@user.command("enable")
@click.argument("name")
def user_enable(name: str) -> None:
    """Let the disabled account NAME log in again (with its password; sessions it had stay ended)."""

    async def go() -> dict[str, Any]:
        async with session(TOOL) as api:
            return await api.call("POST", f"/api/users/{name}/enable")

    run(go)
    click.echo(f"Enabled {name}: they can log in again with their password.")


@user.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for scripts.")
def user_ls(as_json: bool) -> None:
    """List the accounts."""

    async def go() -> dict[str, Any]:
        async with session(TOOL) as api:
            return await api.call("GET", "/api/users")

    listing = run(go)
    lines = [
        f"{u['name']:<24} {'admin' if u['admin'] else 'user':<6} {'disabled' if u['disabled'] else ''}" for u in listing["users"]
    ]
    emit(as_json, listing, "\n".join(lines))


@main.command("edit")
@click.argument("game")
@click.option("--title", default=None, help="The name friends see.")
@click.option("--description", default=None, help="A sentence or two; Steam's is used until you set one.")
@click.option("--header-image", default=None, help="Image address (https://...); Steam's is used until you set one.")
@click.option("--steam-app-id", default=None, type=int, help="The game's Steam app id (0 to clear); fetches its details.")
@click.option("--private/--public", "private", default=None, help="Only granted friends see a private game.")
@click.option(
    "--launch",
    default=None,
    help="How Play starts the game: a program of its builds and its arguments, "
    "like 'bin/game --fullscreen' ('' clears it). With --build: that build's own.",
)
@click.option("--build", "build", default=None, metavar="VERSION", help="Change this build: its --notes or --launch.")
@NOTES
@NOTES_FILE
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for scripts.")
def edit_game(
    game: str,
    title: str | None,
    description: str | None,
    header_image: str | None,
    steam_app_id: int | None,
    private: bool | None,
    launch: str | None,
    build: str | None,
    notes: str | None,
    notes_file: Path | None,
    as_json: bool,
) -> None:
    """Change GAME's catalog entry, or one build's notes and launch command. Fields you set are never overwritten by Steam."""
    text_notes = _notes(notes, notes_file)
    if build is not None:
        if any(v is not None for v in (title, description, header_image, steam_app_id, private)):
            raise click.UsageError("with --build, change only that build's --notes or --launch")
        build_changes = {k: v for k, v in (("notes", text_notes), ("launch", launch)) if v is not None}
        if not build_changes:
            raise click.UsageError("with --build, say what to change: --notes, --notes-file or --launch")

        async def edit_build() -> dict[str, Any]:
            async with session(TOOL) as api:
                return await api.call("PATCH", f"/api/games/{game}/builds/{build}", json=build_changes)

        emit(as_json, run(edit_build), f"Updated {game} {build}.")
        return
    if text_notes is not None:
        raise click.UsageError(f"release notes belong to a build: add --build VERSION (`mistpipe ls {game}` lists them)")
    changes: dict[str, object] = {
        k: v
        for k, v in (
            ("title", title),
            ("description", description),
            ("header_image", header_image),
            ("private", private),
            ("launch", launch),
        )
        if v is not None
    }
    if steam_app_id is not None:
        changes["steam_app_id"] = steam_app_id or None
    if not changes:
        raise click.UsageError("say what to change, for example --title, --launch or --steam-app-id (see --help)")

    async def go() -> dict[str, Any]:
        async with session(TOOL) as api:
            return await api.call("PATCH", f"/api/games/{game}", json=changes)

    shown = run(go)
    emit(as_json, shown, f"Updated {game}." + (" Fetching its Steam details in the background." if shown["job"] else ""))


@main.command("resync-steam")
@click.argument("game")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait for the details to arrive.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for scripts.")
def resync_steam_command(game: str, wait: bool, as_json: bool) -> None:
    """Fetch GAME's description and header image from the Steam store again."""

    async def go() -> dict[str, Any]:
        async with session(TOOL) as api:
            return await resync_steam(api, game, wait)

    status = run(go)
    result = status.get("result") or {}
    text = (
        f"Queued as job {status['job']}."
        if not status["done"]
        else f"{game}: Steam details updated."
        if result.get("synced")
        else f"{game}: {result.get('error')}"
    )
    emit(as_json, status, text)


@main.command("peer-reports")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for scripts.")
def peer_reports(as_json: bool) -> None:
    """Show which peers friends' clients reported for sending corrupt chunks, the most reported first."""

    async def go() -> dict[str, Any]:
        async with session(TOOL) as api:
            return await api.call("GET", "/api/admin/peer-reports")

    listing = run(go)
    lines = [
        f"{p['peer_user']:<24} {p['reports']:>5} report{'' if p['reports'] == 1 else 's'} from "
        f"{p['reporters']} friend{'' if p['reporters'] == 1 else 's'}, last {_local_minute(p['last_reported_at'])}"
        for p in listing["by_peer"]
    ]
    if listing["reports"]:
        lines += ["", "Most recent:"] + [
            f"  {_local_minute(r['reported_at'])}  {r['reporter']} about {r['peer_user']}  {r['game']} {r['digest'][:12]}  {r['reason']}"
            for r in listing["reports"]
        ]
    emit(as_json, listing, "\n".join(lines) or "No peer reports: no friend has received a corrupt chunk from a peer.")


def _local_minute(unix: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(unix))
