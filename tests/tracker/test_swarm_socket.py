"""The swarm socket: who is listed to whom, and which signals the tracker relays (real app, real WebSockets)."""

from __future__ import annotations

import json
import random

import pytest

from shared.chunking import DEFAULT_PARAMS
from shared.manifest import Manifest
from tests.scrape import Scrape
from tests.stored import store_file
from tracker.db import peer_reports

PASSWORD = "friend-password-1"


async def _user(client, admin, name: str) -> dict[str, str]:
    assert (await client.post("/api/users", json={"name": name, "password": PASSWORD}, headers=admin)).status == 201
    login = await client.post("/api/login", json={"user": name, "password": PASSWORD})
    return {"Authorization": f"Bearer {(await login.json())['access_token']}"}


async def _game(ctx, client, admin, slug: str, private: bool) -> str:
    data = random.Random(slug).randbytes(100_000)
    build = Manifest(slug, "1", DEFAULT_PARAMS, (store_file(ctx.store, "game.bin", data),))
    assert (await client.post("/api/games", json={"slug": slug, "title": slug, "private": private}, headers=admin)).status == 201
    assert (await client.post(f"/api/games/{slug}/builds", data=build.canonical_bytes(), headers=admin)).status == 201
    return build.digest()


@pytest.fixture
async def swarm(admin_session):
    """Alice may read both games, Bob only the public one; their sockets are open and announced."""
    ctx, client, admin = admin_session
    public, private = await _game(ctx, client, admin, "open", False), await _game(ctx, client, admin, "closed", True)
    alice, bob = await _user(client, admin, "alice"), await _user(client, admin, "bob")
    assert (await client.post("/api/games/closed/grants", json={"user": "alice"}, headers=admin)).status in (200, 201, 204)
    sockets = {}
    for name, headers in (("alice", alice), ("bob", bob)):
        ws = await client.ws_connect("/api/swarm", headers=headers)
        welcome = await ws.receive_json()
        assert welcome["op"] == "welcome" and welcome["ice"] == [] and welcome["seeder_share"] == 0.2
        assert welcome["peer_floor"] == 3_000_000
        sockets[name] = (ws, welcome["peer"])
    return ctx, client, sockets, public, private


async def ask(ws, body: dict) -> dict:
    await ws.send_json({**body, "id": 7})
    reply = await ws.receive_json()
    assert reply["id"] == 7
    return reply


async def test_the_socket_needs_a_login(admin_session) -> None:
    _, client, _ = admin_session
    response = await client.get("/api/swarm")
    assert response.status == 401


async def test_announced_builds_are_kept_only_where_the_user_may_read_them(swarm) -> None:
    _, _, sockets, public, private = swarm
    (bob, _), (alice, _) = sockets["bob"], sockets["alice"]
    assert (await ask(bob, {"op": "announce", "builds": [public, private, "ab" * 32]}))["builds"] == [public]
    assert sorted((await ask(alice, {"op": "announce", "builds": [public, private]}))["builds"]) == sorted([public, private])


async def test_find_lists_sharing_holders_of_the_game_and_hides_private_games(swarm) -> None:
    _, _, sockets, public, private = swarm
    (alice, alice_id), (bob, bob_id) = sockets["alice"], sockets["bob"]
    await ask(alice, {"op": "announce", "builds": [public, private], "sharing": True})
    found = await ask(bob, {"op": "find", "game": "open", "version": "1"})
    assert found["build"] == public
    assert found["peers"] == [{"peer": alice_id, "user": "alice", "builds": [public], "complete": True}]
    refused = await ask(bob, {"op": "find", "game": "closed", "version": "1"})
    assert refused["op"] == "error" and "no game 'closed'" in refused["error"]  # as if it did not exist
    await ask(alice, {"op": "announce", "builds": [public], "sharing": False})
    assert (await ask(bob, {"op": "find", "game": "open", "version": "1"}))["peers"] == []


async def test_offers_are_relayed_only_for_builds_both_may_read_and_answers_only_back(swarm) -> None:
    _, _, sockets, public, private = swarm
    (alice, alice_id), (bob, bob_id) = sockets["alice"], sockets["bob"]
    refused = await ask(bob, {"op": "signal", "kind": "offer", "to": alice_id, "session": "s1", "sdp": "v=0", "build": private})
    assert refused["op"] == "error" and "not one you both may read" in refused["error"]
    refused = await ask(alice, {"op": "signal", "kind": "offer", "to": bob_id, "session": "s2", "sdp": "v=0", "build": private})
    assert refused["op"] == "error"  # Bob may not read it either way round
    stray = await ask(alice, {"op": "signal", "kind": "answer", "to": bob_id, "session": "s3", "sdp": "v=0"})
    assert stray["op"] == "error" and "no offer" in stray["error"]

    assert (await ask(bob, {"op": "signal", "kind": "offer", "to": alice_id, "session": "s4", "sdp": "OFFER", "build": public}))["op"] == "relayed"
    offer = await alice.receive_json()
    assert (offer["op"], offer["from"], offer["kind"], offer["sdp"], offer["game"], offer["version"]) == (
        "signal", bob_id, "offer", "OFFER", "open", "1")
    assert (await ask(alice, {"op": "signal", "kind": "answer", "to": bob_id, "session": "s4", "sdp": "ANSWER"}))["op"] == "relayed"
    answer = await bob.receive_json()
    assert (answer["kind"], answer["sdp"], answer["from"]) == ("answer", "ANSWER", alice_id)
    again = await ask(alice, {"op": "signal", "kind": "answer", "to": bob_id, "session": "s4", "sdp": "ANSWER"})
    assert again["op"] == "error"  # one answer per offer
    gone = await ask(bob, {"op": "signal", "kind": "offer", "to": "nobody", "session": "s5", "sdp": "x", "build": public})
    assert gone["op"] == "gone"


async def test_a_report_names_the_peer_s_user_for_the_admin(swarm) -> None:
    ctx, _, sockets, public, _ = swarm
    (alice, alice_id), (bob, _) = sockets["alice"], sockets["bob"]
    assert (await ask(bob, {"op": "report", "peer": alice_id, "build": public, "reason": "sent a corrupt copy"}))["op"] == "reported"
    rows = await ctx.db.run(lambda s: peer_reports.recent_reports(s))
    assert [(r.reporter, r.peer_user, r.game) for r in rows] == [("bob", "alice", "open")]
    unknown = await ask(bob, {"op": "report", "peer": "nobody", "build": public, "reason": "x"})
    assert unknown["op"] == "error"


@pytest.mark.parametrize("message", [
    "not json", "[1, 2]", json.dumps({"op": "dance"}), json.dumps({"op": "announce", "builds": "all"}),
    json.dumps({"op": "find", "game": 5}), json.dumps({"op": "signal", "kind": "offer", "to": "x", "session": "s",
                                                       "sdp": "y" * 70_000, "build": "ab" * 32}),
])
async def test_malformed_messages_get_an_error_and_the_socket_stays_open(swarm, message: str) -> None:
    _, _, sockets, public, _ = swarm
    bob, _ = sockets["bob"]
    await bob.send_str(message)
    reply = await bob.receive_json()
    assert reply["op"] == "error" and reply["error"]
    assert (await ask(bob, {"op": "announce", "builds": [public]}))["op"] == "announced"


async def _metrics(client) -> Scrape:
    response = await client.get("/metrics")
    assert response.status == 200
    return Scrape(await response.text())


async def test_tallies_of_finished_downloads_are_counted_for_metrics(swarm) -> None:
    _, client, sockets, public, private = swarm
    (alice, _), (bob, _) = sockets["alice"], sockets["bob"]
    before = await _metrics(client)
    assert before["mist_swarm_connections"] == 2 and before["mist_swarm_tallies_total"] == 0
    reply = await ask(alice, {"op": "tally", "build": private, "bytes_from_peers": 3_000_000, "chunks_from_peers": 40,
                              "bytes_from_seeder": 750_000})
    assert reply == {"op": "tallied", "build": private, "id": 7}
    assert (await ask(bob, {"op": "tally", "build": public, "bytes_from_peers": 0, "chunks_from_peers": 0,
                            "bytes_from_seeder": 100_000}))["op"] == "tallied"
    after = await _metrics(client)
    assert after["mist_swarm_tallies_total"] == 2
    assert after["mist_swarm_peer_chunks_reported_total"] == 40
    assert after["mist_swarm_peer_bytes_reported_total"] == 3_000_000
    assert after["mist_swarm_seeder_bytes_reported_total"] == 850_000


NONSENSE_TALLIES = [
    ({"bytes_from_peers": -1}, "'bytes_from_peers' must be a whole number"),
    ({"bytes_from_peers": 2**41, "chunks_from_peers": 1}, "from 0 to"),
    ({"bytes_from_seeder": 1.5}, "'bytes_from_seeder' must be a whole number"),
    ({"bytes_from_seeder": True}, "'bytes_from_seeder' must be a whole number"),
    ({"chunks_from_peers": "12"}, "'chunks_from_peers' must be a whole number"),
    ({"bytes_from_peers": 10, "chunks_from_peers": 11}, "disagree"),
    ({"bytes_from_peers": 10, "chunks_from_peers": 0}, "disagree"),
    ({"build": "ab" * 31}, "manifest digest"),
    ({"build": "private"}, "unknown build"),  # bob may not read it: as if it did not exist
]


async def test_a_nonsense_tally_is_refused_and_not_counted(swarm) -> None:
    """All on one socket (a fixture per case costs seconds each): each is refused and the socket stays open."""
    _, client, sockets, public, private = swarm
    bob, _ = sockets["bob"]
    for fields, says in NONSENSE_TALLIES:
        body = {"op": "tally", "build": public, "bytes_from_peers": 0, "chunks_from_peers": 0, "bytes_from_seeder": 5,
                **fields}
        if body["build"] == "private":
            body["build"] = private
        reply = await ask(bob, body)
        assert reply["op"] == "error" and says in reply["error"], (fields, reply)
    scraped = await _metrics(client)
    assert scraped["mist_swarm_tallies_total"] == 0 and scraped["mist_swarm_seeder_bytes_reported_total"] == 0
    assert (await ask(bob, {"op": "announce", "builds": [public]}))["op"] == "announced"
