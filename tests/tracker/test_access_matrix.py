"""Every route the tracker and the seeder expose, read from the router itself, against every kind of caller.

A new route fails this test until its access rule is written down here, so none can be forgotten.
"""

from __future__ import annotations

import json

import pytest

from shared import compression, pack
from shared.chunking import DEFAULT_PARAMS, chunk_bytes
from shared.manifest import FileEntry, Manifest
from tracker.config import Settings, TrackerContext
from tracker.embedded import build_app

PUBLIC, USER, ADMIN, READ_TICKET, UPLOAD_TICKET = "public", "user", "admin", "read ticket", "upload ticket"
ACCESS = {
    ("POST", "/api/login"): PUBLIC,
    ("POST", "/api/refresh"): PUBLIC,
    ("GET", "/api/info"): PUBLIC,
    ("GET", "/healthz"): PUBLIC,  # for the service manager and the load balancer; says only what is up
    ("GET", "/seeder/healthz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/get"): PUBLIC,  # how a friend gets the client: this tracker's address and key fingerprint, both public
    ("GET", "/get/mist.whl"): PUBLIC,
    ("GET", "/get/style.css"): PUBLIC,
    ("GET", "/get/{file}"): PUBLIC,  # the client's wheel (the code every friend runs) and the admin's bundles  # counts by route and task, no names; MIST_METRICS_TOKEN closes it
    ("GET", "/api/games"): USER,
    ("GET", "/api/games/{slug}"): USER,
    ("GET", "/api/games/{slug}/builds/{version}/manifest"): USER,
    ("POST", "/api/games/{slug}/builds/{version}/ticket"): USER,
    ("POST", "/api/games/{slug}/builds/{version}/plan"): USER,
    ("GET", "/api/users"): ADMIN,
    ("POST", "/api/users"): ADMIN,
    ("POST", "/api/users/{name}/password"): ADMIN,
    ("POST", "/api/users/{name}/disable"): ADMIN,
    ("POST", "/api/users/{name}/enable"): ADMIN,
    ("GET", "/api/revoked-sessions"): PUBLIC,  # opaque ids of ended sessions, signed: for seeders and friends
    ("PATCH", "/api/games/{slug}/builds/{version}"): ADMIN,
    ("POST", "/api/games"): ADMIN,
    ("POST", "/api/games/{slug}/builds"): ADMIN,
    ("DELETE", "/api/games/{slug}/builds/{version}"): ADMIN,
    ("POST", "/api/games/{slug}/grants"): ADMIN,
    ("PATCH", "/api/games/{slug}"): ADMIN,
    ("POST", "/api/games/{slug}/resync-steam"): ADMIN,
    ("DELETE", "/api/games/{slug}/grants/{user}"): ADMIN,
    ("POST", "/api/upload-ticket"): ADMIN,
    ("POST", "/api/admin/scrub"): ADMIN,
    ("POST", "/api/admin/gc"): ADMIN,
    ("GET", "/api/admin/peer-reports"): ADMIN,
    ("GET", "/api/swarm"): USER,
    ("GET", "/api/admin/jobs/{job}"): ADMIN,
    ("POST", "/seeder/missing"): UPLOAD_TICKET,
    ("POST", "/seeder/chunks"): UPLOAD_TICKET,
    ("POST", "/seeder/fetch"): READ_TICKET,
    ("GET", "/seeder/chunk/{sha256}"): READ_TICKET,
    ("POST", "/seeder/delta"): READ_TICKET,
}
# The admin's calls change "target" (a new password ends its sessions), never a caller below.
PARAMS = {"file": "no-such-file.zip", "slug": "game", "version": "1", "name": "target", "user": "friend", "job": "no-such-job"}
DATA = b"the only file of the only build" * 100


def routes(app) -> list[tuple[str, str]]:
    found = set()
    for route in app.router.routes():
        if route.method == "HEAD":
            continue  # aiohttp adds HEAD beside every GET; it is guarded by the same handler
        found.add((route.method, route.resource.canonical))
    return sorted(found)


@pytest.fixture
async def world(tmp_path, aiohttp_client, monkeypatch):
    monkeypatch.setenv("MIST_ADMIN_PASSWORD", "admin-password-1")
    ctx = TrackerContext.open(Settings(data=tmp_path))
    from tracker.accounts import ensure_admin

    ensure_admin(ctx)
    app = build_app(ctx, worker=False)
    client = await aiohttp_client(app)

    async def login(user: str, password: str) -> str:
        response = await client.post("/api/login", json={"user": user, "password": password})
        return (await response.json())["access_token"]

    admin = await login("admin", "admin-password-1")
    bearer = {"Authorization": f"Bearer {admin}"}
    await client.post("/api/users", json={"name": "friend", "password": "friend-password"}, headers=bearer)
    await client.post("/api/users", json={"name": "granted", "password": "granted-password"}, headers=bearer)
    await client.post("/api/users", json={"name": "gone", "password": "gone-password"}, headers=bearer)
    await client.post("/api/users", json={"name": "target", "password": "target-password"}, headers=bearer)
    chunked = chunk_bytes(DATA)
    for ref in chunked.chunks:
        ctx.store.put(ref.sha256, compression.compress(DATA))  # one chunk: the file is smaller than min size
    for slug, private in (("game", False), ("secret", True)):
        await client.post("/api/games", json={"slug": slug, "title": slug, "private": private}, headers=bearer)
        manifest = Manifest(slug, "1", DEFAULT_PARAMS, (FileEntry("data.bin", len(DATA), False, chunked.sha256, chunked.chunks),))
        committed = await client.post(f"/api/games/{slug}/builds", data=manifest.canonical_bytes(), headers=bearer)
        assert committed.status == 201, await committed.text()
    await client.post("/api/games/secret/grants", json={"user": "granted"}, headers=bearer)
    gone = await login("gone", "gone-password")
    gone_read = (await (await client.post("/api/games/game/builds/1/ticket",
                                          headers={"Authorization": f"Bearer {gone}"})).json())["ticket"]
    await client.post("/api/users/gone/disable", headers=bearer)
    refused = await client.post("/api/login", json={"user": "gone", "password": "gone-password"})
    assert refused.status == 403 and "disabled" in (await refused.json())["error"]  # told so, with no token
    user = await login("friend", "friend-password")
    granted = await login("granted", "granted-password")
    read = (await (await client.post("/api/games/game/builds/1/ticket", headers={"Authorization": f"Bearer {user}"})).json())["ticket"]
    upload = (await (await client.post("/api/upload-ticket", headers=bearer)).json())["ticket"]
    callers = {
        "anonymous": {},
        "user": {"Authorization": f"Bearer {user}"},
        "granted user": {"Authorization": f"Bearer {granted}"},
        "admin": bearer,
        "forged token": {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.e30.forged"},
        "read ticket": {"Authorization": f"Ticket {read}"},
        "upload ticket": {"Authorization": f"Ticket {upload}"},
        "disabled user": {"Authorization": f"Bearer {gone}"},  # a token and a ticket issued before the disable
        "disabled user's ticket": {"Authorization": f"Ticket {gone_read}"},
    }
    return app, client, callers, chunked.chunks[0].sha256


def expected_denial(rule: str, caller: str, private: bool) -> int | None:
    """The status a caller must get, or None where it must get past the access check."""
    if rule == PUBLIC:
        return None
    if rule in (USER, ADMIN):
        if caller in ("anonymous", "forged token", "read ticket", "upload ticket", "disabled user's ticket"):
            return 401
        if caller == "disabled user":
            return 403
        if rule == ADMIN and caller in ("user", "granted user"):
            return 403
        if private and caller == "user":
            return 404  # a private game is invisible to users without a grant: not even 403
        return None
    wanted = "read ticket" if rule == READ_TICKET else "upload ticket"
    return None if caller == wanted else 403


async def test_every_route_has_an_access_rule(world) -> None:
    app, *_ = world
    assert routes(app) == sorted(ACCESS), "a route without an access rule: add it to ACCESS"


async def test_every_caller_gets_what_the_rule_says_on_every_route(world) -> None:
    app, client, callers, chunk = world
    bodies = {"/seeder/missing": pack.encode_hashes([chunk]), "/seeder/fetch": pack.encode_hashes([chunk]),
              "/seeder/chunks": pack.encode([])}
    failures = []
    last_deletes = sorted(routes(app), key=lambda route: route[0] == "DELETE")  # an admin's DELETE removes the build
    for method, template, slug in [(m, t, s) for m, t in last_deletes for s in ("game", "secret") if "{slug}" in t or s == "game"]:
        path = template.format(**{**PARAMS, "slug": slug, "sha256": chunk})
        for caller, headers in callers.items():
            body = bodies.get(template, json.dumps({}).encode())
            response = await client.request(method, path, data=body, headers=headers)
            want = expected_denial(ACCESS[(method, template)], caller, private=slug == "secret")
            got = response.status
            if (want is None and got in (401, 403)) or (want is not None and got != want):
                failures.append(f"{caller:>14} {method} {path}: got {got}, want {want or 'past the access check'}")
            assert response.content_type == "application/json" or got < 400, f"{method} {path}: non-JSON error"
    assert not failures, "\n".join(failures)
