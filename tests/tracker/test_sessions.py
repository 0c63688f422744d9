"""Ending an account's sessions at once (issue 13): disabling and a new password stop its tokens, tickets and
swarm connection on the next request, not when they expire; a disabled friend is told so."""

from __future__ import annotations

import asyncio
import json

from shared import pack
from shared.chunking import DEFAULT_PARAMS
from shared.manifest import Manifest
from shared.signing import verify
from tests.stored import store_file
from tracker.sessions import session_id

PASSWORD = "friend-password-1"


async def login(client, name: str, password: str = PASSWORD) -> dict:
    response = await client.post("/api/login", json={"user": name, "password": password})
    assert response.status == 200, await response.text()
    return await response.json()


def bearer(session: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {session['access_token']}"}


async def world(admin_session, name: str = "bob"):
    ctx, client, admin = admin_session
    assert (await client.post("/api/users", json={"name": name, "password": PASSWORD}, headers=admin)).status == 201
    assert (await client.post("/api/games", json={"slug": "hollow", "title": "Hollow"}, headers=admin)).status == 201
    build = Manifest("hollow", "1.0", DEFAULT_PARAMS, (store_file(ctx.store, "game.bin", b"game data " * 5000),))
    assert (await client.post("/api/games/hollow/builds", data=build.canonical_bytes(), headers=admin)).status == 201
    return ctx, client, admin, build


async def ticket_for(client, session: dict) -> str:
    response = await client.post("/api/games/hollow/builds/1.0/ticket", headers=bearer(session))
    assert response.status == 200
    return (await response.json())["ticket"]


async def fetch_status(client, ticket: str, build: Manifest) -> int:
    body = pack.encode_hashes([build.files[0].chunks[0].sha256])
    response = await client.post("/seeder/fetch", data=body, headers={"Authorization": f"Ticket {ticket}"})
    await response.read()
    return response.status


async def test_disabling_ends_tokens_and_tickets_at_once_and_says_the_account_is_disabled(admin_session) -> None:
    ctx, client, admin, build = await world(admin_session)
    bob = await login(client, "bob")
    ticket = await ticket_for(client, bob)
    assert await fetch_status(client, ticket, build) == 200
    assert (await client.get("/api/games", headers=bearer(bob))).status == 200  # the session is cached now

    assert (await client.post("/api/users/bob/disable", headers=admin)).status == 200
    refused = await client.get("/api/games", headers=bearer(bob))
    assert refused.status == 403 and "disabled" in (await refused.json())["error"]
    assert await fetch_status(client, ticket, build) == 403  # the hour-long ticket ended with the session
    again = await client.post("/api/refresh", json={"refresh_token": bob["refresh_token"]})
    assert again.status == 403 and "disabled" in (await again.json())["error"]
    right = await client.post("/api/login", json={"user": "bob", "password": PASSWORD})
    assert right.status == 403 and "disabled" in (await right.json())["error"]
    wrong = await client.post("/api/login", json={"user": "bob", "password": "not-it-at-all"})
    assert wrong.status == 401 and "disabled" not in (await wrong.json())["error"]  # a guesser learns nothing

    assert (await client.post("/api/users/bob/enable", headers=admin)).status == 200
    assert (await client.get("/api/games", headers=bearer(bob))).status == 401  # what had ended stays ended
    assert await fetch_status(client, ticket, build) == 403
    fresh = await login(client, "bob")
    assert (await client.get("/api/games", headers=bearer(fresh))).status == 200
    assert await fetch_status(client, await ticket_for(client, fresh), build) == 200


async def test_a_new_password_ends_the_old_sessions_but_not_the_admins(admin_session) -> None:
    ctx, client, admin, build = await world(admin_session)
    alice = await login(client, "bob")
    ticket = await ticket_for(client, alice)
    assert (await client.post("/api/users/bob/password", json={"password": "another-password"}, headers=admin)).status == 200
    ended = await client.get("/api/games", headers=bearer(alice))
    assert ended.status == 401 and "log in again" in (await ended.json())["error"]
    assert await fetch_status(client, ticket, build) == 403
    assert (await client.get("/api/games", headers=admin)).status == 200
    assert (await client.get("/api/games", headers=bearer(await login(client, "bob", "another-password")))).status == 200


async def test_the_ended_sessions_are_published_signed_and_opaque(admin_session) -> None:
    ctx, client, admin, _ = await world(admin_session)
    await client.post("/api/users/bob/disable", headers=admin)
    answer = await (await client.get("/api/revoked-sessions")).json()
    verify(ctx.signer.public_key, answer["payload"].encode(), answer["signature"])
    listed = json.loads(answer["payload"])["sessions"]
    assert session_id(ctx.jwt_secret, "bob", 0) in listed and session_id(ctx.jwt_secret, "bob", 1) in listed
    assert "bob" not in answer["payload"]  # ids, not names: a seeder need not know who the friends are


async def test_a_refresh_token_is_redeemed_once_however_many_try_at_once(admin_session) -> None:
    ctx, client, admin, _ = await world(admin_session)
    bob = await login(client, "bob")
    answers = await asyncio.gather(*(client.post("/api/refresh", json={"refresh_token": bob["refresh_token"]})
                                     for _ in range(20)))
    assert sorted(a.status for a in answers) == [200] + [401] * 19


async def test_disabling_closes_the_swarm_socket_and_tells_the_other_members(admin_session) -> None:
    ctx, client, admin, _ = await world(admin_session)
    await client.post("/api/users", json={"name": "carol", "password": PASSWORD}, headers=admin)
    bob, carol = await login(client, "bob"), await login(client, "carol")
    sockets = {}
    for name, session in (("bob", bob), ("carol", carol)):
        ws = await client.ws_connect("/api/swarm", headers=bearer(session))
        assert (await ws.receive_json())["op"] == "welcome"
        sockets[name] = ws
    await client.post("/api/users/bob/disable", headers=admin)
    closed = await sockets["bob"].receive(timeout=10)
    assert sockets["bob"].closed and closed.data == 4001
    told = await sockets["carol"].receive_json(timeout=10)
    assert told["op"] == "sessions-ended" and session_id(ctx.jwt_secret, "bob", 0) in told["sessions"]
    refused = await client.get("/api/swarm", headers=bearer(bob))
    assert refused.status == 403
    await sockets["carol"].close()


async def test_the_embedded_seeder_keeps_the_last_list_while_the_database_is_away(admin_session) -> None:
    """A database restart must not turn a push's chunk uploads into 500s: the ended sessions read last stay in
    force and are read again once the database answers."""
    from sqlalchemy import create_engine

    from tests.tracker.test_error_boundaries import closed_port
    from tracker.db.engine import Database
    from tracker.sessions import CACHE_SECONDS, Sessions

    ctx, client, admin, _ = await world(admin_session)
    now = [1000.0]
    sessions = Sessions(ctx.db, b"s" * 32, clock=lambda: now[0])
    assert (await client.post("/api/users/bob/disable", headers=admin)).status == 200
    ended = session_id(b"s" * 32, "bob", 0)
    assert await sessions.ended(ended)

    # The database away for real: nothing listens where it is (its layer says DatabaseUnavailable, not SQLAlchemy).
    sessions.db = Database(create_engine(f"postgresql+psycopg://mist@127.0.0.1:{closed_port()}/mist",
                                         connect_args={"connect_timeout": 5}))
    now[0] += CACHE_SECONDS
    assert await sessions.ended(ended) and not await sessions.ended("another")  # the last list, no exception
    sessions.db = ctx.db
    now[0] += CACHE_SECONDS
    assert await sessions.ended(ended)  # read again from the database
