"""Release notes and launch commands: stored with a build at its push, shown in the catalog, edited later, and
refused when Play could not run them (a program that is not a file of the build) or they are not plain text."""

from __future__ import annotations

import aiohttp

from shared.chunking import DEFAULT_PARAMS
from shared.manifest import Manifest
from tests.stored import store_file


def build(ctx, version: str, files: tuple[str, ...] = ("bin/game", "data.pak")) -> Manifest:
    entries = tuple(store_file(ctx.store, path, f"{path} {version}".encode() * 100) for path in files)
    return Manifest("hollow", version, DEFAULT_PARAMS, entries)


async def commit(client, admin, manifest: Manifest, notes: str = "", launch: str = ""):
    form = aiohttp.FormData()
    form.add_field("manifest", manifest.canonical_bytes(), content_type="application/json", filename="manifest.json")
    for name, value in (("notes", notes), ("launch", launch)):
        if value:
            form.add_field(name, value.encode(), content_type="text/plain", filename=f"{name}.txt")
    return await client.post("/api/games/hollow/builds", data=form, headers=admin)


async def builds(client, admin) -> dict[str, dict]:
    game = await (await client.get("/api/games/hollow", headers=admin)).json()
    return {"game": game, **{b["version"]: b for b in game["builds"]}}


async def test_notes_and_launch_commands_travel_with_the_push_and_later_builds_inherit_the_game_s(admin_session) -> None:
    ctx, client, admin = admin_session
    await client.post("/api/games", json={"slug": "hollow", "title": "Hollow Knight"}, headers=admin)
    response = await commit(client, admin, build(ctx, "1.0"), notes="First release.\n\n- all of it", launch="bin/game --fullscreen")
    assert response.status == 201, await response.text()
    assert (await commit(client, admin, build(ctx, "1.1"))).status == 201  # a plain body still commits too
    shown = await builds(client, admin)
    assert shown["game"]["launch"] == "bin/game --fullscreen"  # the first launch command became the game's
    assert (shown["1.0"]["notes"], shown["1.0"]["launch"], shown["1.0"]["launch_from"]) == (
        "First release.\n\n- all of it", "bin/game --fullscreen", "game")
    assert (shown["1.1"]["notes"], shown["1.1"]["launch"]) == ("", "bin/game --fullscreen")

    edited = await client.patch("/api/games/hollow/builds/1.1", json={"notes": "Fixes the map.", "launch": "bin/game --safe"},
                                headers=admin)
    assert edited.status == 200, await edited.text()
    assert await client.patch("/api/games/hollow", json={"launch": "bin/game"}, headers=admin)
    shown = await builds(client, admin)
    assert (shown["1.0"]["launch"], shown["1.1"]["launch"], shown["1.1"]["launch_from"]) == ("bin/game", "bin/game --safe", "build")
    assert shown["1.1"]["notes"] == "Fixes the map."


async def test_launch_commands_and_notes_that_cannot_be_used_are_refused_saying_why(admin_session) -> None:
    ctx, client, admin = admin_session
    await client.post("/api/games", json={"slug": "hollow", "title": "Hollow Knight"}, headers=admin)
    for launch, why in (("bin/other", "not a file of hollow 1.0"), ("/usr/bin/rm -rf ~", "relative to its folder"),
                        ("../bin/game", "relative to its folder"), ("bin/game 'unclosed", "quotes")):
        refused = await commit(client, admin, build(ctx, "1.0"), launch=launch)
        assert refused.status == 400 and why in (await refused.json())["error"], launch
    refused = await commit(client, admin, build(ctx, "1.0"), notes="bell \x07 here")
    assert refused.status == 400 and "control character" in (await refused.json())["error"]
    assert (await builds(client, admin))["game"]["builds"] == []  # nothing was committed by a refused push
    assert (await commit(client, admin, build(ctx, "1.0"))).status == 201
    refused = await client.patch("/api/games/hollow/builds/1.0", json={"launch": "game.exe"}, headers=admin)
    assert refused.status == 400 and "not a file" in (await refused.json())["error"]
    refused = await client.patch("/api/games/hollow", json={"launch": "C:/Games/x.exe"}, headers=admin)
    assert refused.status == 400
    gone = await client.patch("/api/games/hollow/builds/9.9", json={"notes": "x"}, headers=admin)
    assert gone.status == 404 and (await gone.json())["detail"]["missing"] == "version"


async def test_an_empty_build_is_refused(admin_session) -> None:
    ctx, client, admin = admin_session
    await client.post("/api/games", json={"slug": "hollow", "title": "Hollow Knight"}, headers=admin)
    empty = Manifest("hollow", "2.0", DEFAULT_PARAMS, ())
    refused = await client.post("/api/games/hollow/builds", data=empty.canonical_bytes(), headers=admin)
    assert refused.status == 422 and "no files" in (await refused.json())["error"]


async def test_a_manifest_whose_file_hash_is_not_what_its_chunks_make_is_refused(admin_session) -> None:
    from dataclasses import replace

    ctx, client, admin = admin_session
    await client.post("/api/games", json={"slug": "hollow", "title": "Hollow Knight"}, headers=admin)
    real = store_file(ctx.store, "game.bin", b"the real game " * 4000)
    other = store_file(ctx.store, "other.bin", b"something else " * 3000)
    lying = replace(real, sha256=other.sha256)  # the chunks are all in the store; the hash names other content
    refused = await client.post("/api/games/hollow/builds", headers=admin,
                                data=Manifest("hollow", "1", DEFAULT_PARAMS, (lying,)).canonical_bytes())
    assert refused.status == 422 and "not what their chunks make (first: game.bin)" in (await refused.json())["error"]
    assert (await builds(client, admin))["game"]["builds"] == []
    honest = Manifest("hollow", "1", DEFAULT_PARAMS, (real, other))
    assert (await client.post("/api/games/hollow/builds", data=honest.canonical_bytes(), headers=admin)).status == 201
