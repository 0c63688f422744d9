"""Peer reports (issue 5): stored once per reporter, peer and build an hour, and shown only to the admin."""

from __future__ import annotations

import pytest
from aiohttp import web

from shared.chunking import DEFAULT_PARAMS
from shared.manifest import Manifest
from tests.stored import store_file
from tracker.db import queries
from tracker.db.peer_reports import DEDUPE_SECONDS, REASON_CHARS, REPORTS_PER_HOUR, recent_reports, record_report
from tracker.errors import NotFound
from tracker.routes import peer_reports
from tracker.routes.web import CONTEXT, errors_middleware, sessions_middleware

NOW = 1_700_000_000.0


@pytest.fixture
async def world(admin_session, aiohttp_client):
    """(context, client of the admin routes, admin header, alice's header, {game: build digest}).

    The routes are served on their own app with the tracker's middleware, so this tests the module; that
    tracker/app.py registers them, and for whom, is test_access_matrix's business. `secret` is granted to nobody.
    """
    ctx, client, admin = admin_session
    await client.post("/api/users", json={"name": "alice", "password": "alice-password"}, headers=admin)
    for name in ("bob", "carol"):  # never log in: no password hash to make (argon2 is slow on purpose)
        ctx.db.call(lambda s: queries.add_user(s, name, "no-login", False))
    digests = {}
    for slug, private in (("jump", False), ("secret", True)):
        await client.post("/api/games", json={"slug": slug, "title": slug, "private": private}, headers=admin)
        build = Manifest(slug, "1", DEFAULT_PARAMS, (store_file(ctx.store, "data.bin", slug.encode() * 1000),))
        assert (await client.post(f"/api/games/{slug}/builds", data=build.canonical_bytes(), headers=admin)).status == 201
        digests[slug] = build.digest()
    login = await client.post("/api/login", json={"user": "alice", "password": "alice-password"})
    alice = {"Authorization": f"Bearer {(await login.json())['access_token']}"}
    app = web.Application(middlewares=[errors_middleware, sessions_middleware])
    app[CONTEXT] = ctx
    app.add_routes(peer_reports.routes())
    return ctx, await aiohttp_client(app), admin, alice, digests


def report(ctx, reporter: str, peer: str, digest: str, now: float, reason: str = "chunk failed its hash",
           game: str = "jump") -> bool:
    return ctx.db.call(lambda s: record_report(s, reporter=reporter, peer_user=peer, game=game, build=digest,
                                               reason=reason, now=now))


async def test_the_admin_sees_each_report_newest_first_and_a_line_per_peer(world) -> None:
    ctx, client, admin, _, digests = world
    assert report(ctx, "alice", "bob", digests["jump"], NOW)
    assert report(ctx, "carol", "bob", digests["jump"], NOW + 5)
    assert report(ctx, "bob", "alice", digests["jump"], NOW + 9, "bad chunk 3f2a")
    response = await client.get("/api/admin/peer-reports", headers=admin)
    assert response.status == 200
    body = await response.json()
    assert [(r["reporter"], r["peer_user"], r["reported_at"]) for r in body["reports"]] == [
        ("bob", "alice", NOW + 9), ("carol", "bob", NOW + 5), ("alice", "bob", NOW)]
    assert body["reports"][0] == {"reported_at": NOW + 9, "reporter": "bob", "peer_user": "alice", "game": "jump",
                                  "digest": digests["jump"], "reason": "bad chunk 3f2a"}
    assert body["by_peer"] == [
        {"peer_user": "bob", "reports": 2, "reporters": 2, "last_reported_at": NOW + 5},
        {"peer_user": "alice", "reports": 1, "reporters": 1, "last_reported_at": NOW + 9},
    ]


async def test_an_empty_table_gives_empty_lists(world) -> None:
    _, client, admin, _, _ = world
    assert await (await client.get("/api/admin/peer-reports", headers=admin)).json() == {"reports": [], "by_peer": []}


async def test_a_repeat_within_the_hour_is_stored_once(world) -> None:
    ctx, _, _, _, digests = world
    assert report(ctx, "alice", "bob", digests["jump"], NOW)
    for later in (0.0, 1.0, DEDUPE_SECONDS - 1):
        assert not report(ctx, "alice", "bob", digests["jump"], NOW + later)
    assert report(ctx, "alice", "bob", digests["jump"], NOW + DEDUPE_SECONDS)  # the hour since the stored one is over
    assert report(ctx, "carol", "bob", digests["jump"], NOW)  # another reporter, peer or build is another report
    assert report(ctx, "alice", "carol", digests["jump"], NOW)
    assert len(ctx.db.call(recent_reports)) == 4


async def test_one_reporter_stores_at_most_its_hourly_share_whatever_it_names(world) -> None:
    ctx, _, _, _, digests = world
    for name in [f"peer{i}" for i in range(30)]:
        ctx.db.call(lambda s: queries.add_user(s, name, "no-login", False))
    stored = [report(ctx, "alice", f"peer{i}", digests["jump"], NOW + i) for i in range(30)]
    assert stored == [True] * REPORTS_PER_HOUR + [False] * (30 - REPORTS_PER_HOUR)
    assert report(ctx, "carol", "peer0", digests["jump"], NOW + 40)  # another reporter is not held back by alice
    assert report(ctx, "alice", "peer29", digests["jump"], NOW + DEDUPE_SECONDS + 1)  # the next hour


async def test_the_reason_is_cut_and_cleaned_of_terminal_controls(world) -> None:
    ctx, _, _, _, digests = world
    report(ctx, "alice", "bob", digests["jump"], NOW, "\x1b[2Jcleared\n" + "x" * 2000)
    [stored] = ctx.db.call(recent_reports)
    assert len(stored.reason) == REASON_CHARS
    assert stored.reason.startswith(" [2Jcleared x")


@pytest.mark.parametrize("peer, game, digest_of, why", [
    ("mallory", "jump", "jump", "no user 'mallory'"),  # a peer no account has
    ("bob", "jump", "secret", "jump has no build"),  # a build of another game
    ("bob", "secret", "secret", "no game 'secret'"),  # a private game not granted to the reporter: as if absent
])
async def test_reports_naming_no_real_peer_or_visible_build_are_refused(world, peer, game, digest_of, why) -> None:
    ctx, _, _, _, digests = world
    with pytest.raises(NotFound, match=why):
        report(ctx, "alice", peer, digests[digest_of], NOW, game=game)
    assert ctx.db.call(recent_reports) == []


async def test_reports_are_for_the_admin_only(world) -> None:
    _, client, _, alice, _ = world
    assert (await client.get("/api/admin/peer-reports", headers=alice)).status == 403
    assert (await client.get("/api/admin/peer-reports")).status == 401
