"""What a friend holds reaches the patch job: a finished install over HTTP, and a daemon's announcement.

Real tracker application, real HTTP and WebSocket; the patch job's sources are read from the database
exactly as the worker reads them.
"""

from __future__ import annotations

import random

import pytest

from shared.chunking import DEFAULT_PARAMS
from shared.manifest import Manifest
from tests.scrape import Scrape
from tests.stored import store_file
from tracker.db import activity, patches as patch_queries

PASSWORD = "friend-password-1"


async def _friend(client, admin, name: str) -> dict[str, str]:
    assert (await client.post("/api/users", json={"name": name, "password": PASSWORD}, headers=admin)).status == 201
    login = await client.post("/api/login", json={"user": name, "password": PASSWORD})
    return {"Authorization": f"Bearer {(await login.json())['access_token']}"}


@pytest.fixture
async def three_builds(admin_session):
    """Game g with builds 1, 2 and 3 (pushed in that order), and a friend, alice."""
    ctx, client, admin = admin_session
    assert (await client.post("/api/games", json={"slug": "g", "title": "G"}, headers=admin)).status == 201
    digests = {}
    for version in ("1", "2", "3"):
        data = random.Random(version).randbytes(50_000)
        build = Manifest("g", version, DEFAULT_PARAMS, (store_file(ctx.store, "game.bin", data),))
        assert (await client.post("/api/games/g/builds", data=build.canonical_bytes(), headers=admin)).status == 201
        digests[version] = build.digest()
    return ctx, client, await _friend(client, admin, "alice"), digests


def _sources(ctx, version: str) -> list[str]:
    return sorted(m.version for m in ctx.db.call(lambda s: patch_queries.patch_sources(s, "g", version)))


async def test_a_finished_install_is_held_so_the_next_push_patches_from_it(three_builds) -> None:
    ctx, client, alice, digests = three_builds
    assert _sources(ctx, "3") == ["2"]  # nobody holds anything yet: only the build pushed before
    body = {"digest": digests["1"], "bytes_from_peers": 0, "chunks_from_peers": 0, "bytes_from_seeder": 51_000}
    answer = await client.post("/api/games/g/builds/1/installed", json=body, headers=alice)
    assert answer.status == 200 and (await answer.json())["recorded"] is True
    assert _sources(ctx, "3") == ["1", "2"]
    events = ctx.db.call(lambda s: activity.transfers_since(s, 0))
    assert [(peers, seeder) for _, peers, seeder in events] == [(0, 51_000)]
    scraped = Scrape(await (await client.get("/metrics")).text())
    assert scraped["mist_swarm_tallies_total"] == 1 and scraped["mist_swarm_seeder_bytes_reported_total"] == 51_000

    # Updating to 2 replaces what she holds: 1 is no longer a source.
    body["digest"] = digests["2"]
    assert (await client.post("/api/games/g/builds/2/installed", json=body, headers=alice)).status == 200
    assert _sources(ctx, "3") == ["2"]


REFUSED = [
    ("1", {"digest": "ab" * 32}, 404, "is not the build"),
    ("2", {"digest": "DIGEST-1"}, 404, "is not the build"),  # the digest of another version
    ("1", {}, 400, "'digest' is required"),
    ("1", {"digest": "DIGEST-1", "bytes_from_seeder": -5}, 400, "whole number from 0"),
    ("1", {"digest": "DIGEST-1", "bytes_from_peers": 10, "chunks_from_peers": 0}, 400, "disagree"),
    ("1", {"digest": "DIGEST-1", "bytes_from_peers": True}, 400, "must be a int"),
    ("1", {"digest": "DIGEST-1", "color": "red"}, 400, "unknown field"),
]


async def test_a_wrong_report_is_refused_with_its_reason_and_changes_nothing(three_builds) -> None:
    ctx, client, alice, digests = three_builds
    for version, body, status, says in REFUSED:
        body = {k: (digests["1"] if v == "DIGEST-1" else v) for k, v in body.items()}
        answer = await client.post(f"/api/games/g/builds/{version}/installed", json=body, headers=alice)
        assert answer.status == status and says in (await answer.json())["error"], (body, await answer.text())
    assert (await client.post("/api/games/g/builds/1/installed", json={"digest": digests["1"]})).status == 401
    assert _sources(ctx, "3") == ["2"]
    assert ctx.db.call(lambda s: activity.transfers_since(s, 0)) == []


async def test_a_daemons_announcement_records_what_it_holds(three_builds) -> None:
    ctx, client, alice, digests = three_builds
    ws = await client.ws_connect("/api/swarm", headers=alice)
    assert (await ws.receive_json())["op"] == "welcome"
    await ws.send_json({"op": "announce", "builds": [digests["1"]], "id": 1})
    assert (await ws.receive_json())["op"] == "announced"
    await ws.close()
    assert _sources(ctx, "3") == ["1", "2"]
