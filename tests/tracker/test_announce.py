"""Announcing a published build (real app, real WebSockets, the real client signalling): each online friend who may
read the game hears its own line, no one else hears anything, and only public games are queued for Discord."""

from __future__ import annotations

import asyncio
import random
import time

from sqlalchemy import text

from client.api import Api
from client.credentials import Credentials
from client.news import News
from client.signalling import Signalling
from shared.chunking import DEFAULT_PARAMS
from shared.manifest import Manifest
from tests.stored import store_file
from tracker.announce import ANNOUNCER
from tracker.db import patches as patch_queries
from tracker.notify import size_text, update_bytes

PASSWORD = "friend-password-1"
OLD = random.Random(1).randbytes(400_000)
NEW = OLD[:200_000] + random.Random(2).randbytes(60_000) + OLD[200_000:]  # about a fifth of the chunks change
LEVEL = random.Random(3).randbytes(150_000)


async def login(client, admin, name: str) -> dict:
    assert (await client.post("/api/users", json={"name": name, "password": PASSWORD}, headers=admin)).status == 201
    return await (await client.post("/api/login", json={"user": name, "password": PASSWORD})).json()


def bearer(session: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {session['access_token']}"}


async def new_game(client, admin, slug: str, title: str, private: bool = False) -> None:
    assert (await client.post("/api/games", json={"slug": slug, "title": title, "private": private}, headers=admin)).status == 201


async def push(ctx, client, admin, slug: str, version: str, game_bin: bytes) -> Manifest:
    build = Manifest(slug, version, DEFAULT_PARAMS, (store_file(ctx.store, "game.bin", game_bin),
                                                     store_file(ctx.store, "level.pak", LEVEL)))
    response = await client.post(f"/api/games/{slug}/builds", data=build.canonical_bytes(), headers=admin)
    assert response.status == 201, await response.text()
    return build


def stored_bytes(ctx, chunks: set[str]) -> int:
    return sum(ctx.store.sizes(chunks).values())


def planned(ctx, target: Manifest, held: list[Manifest]) -> int:
    """What the planner sends a client holding `held`: the chunks it lacks, or the patches the tracker has."""
    options = ctx.db.call(lambda s: patch_queries.options_for(s, {f.sha256 for f in target.files}))
    return update_bytes(target, held, ctx.store.sizes(set(target.chunk_sizes())), options)


def discord_posts(ctx) -> list[str]:
    return [task.args[0] for task in ctx.jobs.huey.pending() if task.name == "post_news"]


async def test_each_reader_hears_its_own_size_and_a_private_game_reaches_only_its_readers(admin_session) -> None:
    ctx, client, admin = admin_session
    announcer = client.app[ANNOUNCER]
    announcer.wait = 0  # no worker makes patches here: the news is sized by chunks at once
    await new_game(client, admin, "hollow", "Hollow Knight")
    await new_game(client, admin, "vault", "Vault", private=True)
    v10 = await push(ctx, client, admin, "hollow", "1.0", OLD)
    vault1 = await push(ctx, client, admin, "vault", "1", OLD)
    alice, bob = await login(client, admin, "alice"), await login(client, admin, "bob")
    assert (await client.post("/api/games/vault/grants", json={"user": "alice"}, headers=admin)).status == 200
    await announcer.drained()
    sockets = {}
    for name, session, holds in (("alice", alice, [v10.digest(), vault1.digest()]), ("bob", bob, [])):
        ws = await client.ws_connect("/api/swarm", headers=bearer(session))
        assert (await ws.receive_json())["op"] == "welcome"
        await ws.send_json({"op": "announce", "builds": holds, "id": 1})
        assert (await ws.receive_json())["op"] == "announced"
        sockets[name] = ws

    v11 = await push(ctx, client, admin, "hollow", "1.1", NEW)
    update = planned(ctx, v11, [v10])
    install = stored_bytes(ctx, set(v11.chunk_sizes()))
    assert 0 < update < install / 2
    heard = await sockets["alice"].receive_json(timeout=10)
    assert type(heard.pop("news_id")) is int
    assert heard == {"op": "news", "kind": "build", "game": "hollow", "title": "Hollow Knight", "version": "1.1",
                     "text": f"Hollow Knight 1.1 is out, {size_text(update)} update", "bytes": update, "update": True}
    heard = await sockets["bob"].receive_json(timeout=10)  # holds nothing: the whole install
    assert (heard["text"], heard["bytes"], heard["update"]) == (f"Hollow Knight 1.1 is out, {size_text(install)} to install",
                                                                install, False)
    await announcer.drained()
    assert discord_posts(ctx) == [
        f"Hollow Knight 1.0 is out, {size_text(stored_bytes(ctx, set(v10.chunk_sizes())))} to install",
        f"Hollow Knight 1.1 is out, {size_text(update)} update from 1.0, {size_text(install)} to install",
    ]

    await push(ctx, client, admin, "vault", "2", NEW)
    heard = await sockets["alice"].receive_json(timeout=10)
    assert (heard["game"], heard["title"], heard["bytes"]) == ("vault", "Vault", update)
    await push(ctx, client, admin, "hollow", "1.2", NEW + b"!")
    later = await sockets["bob"].receive_json(timeout=10)
    assert (later["game"], later["version"]) == ("hollow", "1.2")  # and nothing about the vault came before it
    await announcer.drained()
    assert not any("Vault" in text for text in discord_posts(ctx))  # a private game is never posted

    await push(ctx, client, admin, "hollow", "1.2", NEW + b"!")  # the same build again is no news
    await announcer.drained()
    assert len(discord_posts(ctx)) == 3
    await push(ctx, client, admin, "hollow", "1.3", OLD)
    assert (await sockets["bob"].receive_json(timeout=10))["version"] == "1.3"  # the next news, not 1.2 again


async def test_the_client_signalling_hands_news_on_and_a_client_that_does_not_listen_carries_on(admin_session) -> None:
    ctx, client, admin = admin_session
    client.app[ANNOUNCER].wait = 0
    await new_game(client, admin, "hollow", "Hollow Knight")
    url = str(client.make_url("")).rstrip("/")
    heard: list[News] = []
    arrived = asyncio.Event()

    def hear(news: News) -> None:
        heard.append(news)
        arrived.set()

    async def api(name: str) -> Api:
        s = await login(client, admin, name)
        return Api(Credentials(url, s["user"], s["scope"], s["access_token"], time.time() + s["expires_in"],
                               s["refresh_token"], s["public_key"]), lambda c: None)

    async with await api("dora") as dora_api, await api("eve") as eve_api:
        listening, deaf = Signalling(dora_api, on_news=hear), Signalling(eve_api)  # eve: a client from before news
        running = [asyncio.create_task(s.run()) for s in (listening, deaf)]
        try:
            assert await listening.wait_connected(10) and await deaf.wait_connected(10)
            await push(ctx, client, admin, "hollow", "1.0", OLD)
            await asyncio.wait_for(arrived.wait(), 10)
            assert [(n.game, n.version, n.update) for n in heard] == [("hollow", "1.0", False)]
            assert heard[0].text.startswith("Hollow Knight 1.0 is out, ") and heard[0].text.endswith(" to install")
            await client.app[ANNOUNCER].drained()  # eve's socket got the news before anything sent after this
            assert await deaf.find("hollow", "1.0") == [] and deaf.connected
        finally:
            for task in running:
                task.cancel()
            await asyncio.wait(running)


async def test_news_waits_for_a_friend_who_was_offline_until_their_daemon_says_it_heard_it(admin_session) -> None:
    ctx, client, admin = admin_session
    announcer = client.app[ANNOUNCER]
    announcer.wait = 0
    await new_game(client, admin, "hollow", "Hollow Knight")
    v10 = await push(ctx, client, admin, "hollow", "1.0", OLD)
    carol = await login(client, admin, "carol")  # not online at any push
    await push(ctx, client, admin, "hollow", "1.1", NEW)
    await push(ctx, client, admin, "hollow", "1.2", NEW + b"?")  # replaces the 1.1 news: only the newest is kept
    await announcer.drained()

    async def connect(holds: list[str]) -> tuple[object, list[dict]]:
        ws = await client.ws_connect("/api/swarm", headers=bearer(carol))
        assert (await ws.receive_json())["op"] == "welcome"
        await ws.send_json({"op": "announce", "builds": holds, "id": 1})
        before = []
        while (message := await ws.receive_json(timeout=10))["op"] != "announced":
            before.append(message)
        return ws, before

    ws, told = await connect([v10.digest()])
    assert [(m["version"], m["update"]) for m in told] == [("1.2", True)]  # sized for the 1.0 carol holds
    await ws.close()
    ws, told = await connect([v10.digest()])  # not acknowledged: told again
    assert [m["version"] for m in told] == ["1.2"]
    await ws.send_json({"op": "heard", "news": [told[0]["news_id"]], "id": 2})
    assert (await ws.receive_json(timeout=10)) == {"op": "noted", "news": 1, "id": 2}
    await ws.send_json({"op": "heard", "news": ["1"], "id": 3})
    assert (await ws.receive_json(timeout=10))["op"] == "error"
    await ws.close()
    ws, told = await connect([v10.digest()])
    assert told == []  # heard: never again
    await ws.close()
    v13 = await push(ctx, client, admin, "hollow", "1.3", OLD + b"!")
    await announcer.drained()
    ws, told = await connect([v13.digest()])  # already holds it (installed by hand): nothing to tell, and forgotten
    assert told == []
    assert ctx.db.call(lambda s: s.execute(text("SELECT count(*) FROM pending_news WHERE user_id = "
                                                    "(SELECT id FROM users WHERE name = 'carol')")).scalar_one()) == 0
    await ws.close()
