"""Every route the tracker and the seeder expose, read from the router itself, against every kind of caller.

A new route fails this test until its access rule is written down here, so none can be forgotten.
"""

from __future__ import annotations

import json

import pytest

from tests import backends
from shared import compression, pack
from shared.chunking import DEFAULT_PARAMS, chunk_bytes
from shared.manifest import FileEntry, Manifest
from tests.tracker.admin_site import sign_in
from tracker.cli.mist_server import build_app
from tracker.config import TrackerContext
from tracker.db import admin_views

PUBLIC, USER, ADMIN, READ_TICKET, UPLOAD_TICKET = "public", "user", "admin", "read ticket", "upload ticket"
PAGE, PUBLIC_PAGE, PUBLIC_FORM = "admin page", "public page", "public form"  # the admin site (cookie sessions)
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
    ("POST", "/api/games/{slug}/builds/{version}/installed"): USER,
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
    ("GET", "/api/friends"): USER,
    ("GET", "/api/admin/jobs/{job}"): ADMIN,
    ("POST", "/seeder/missing"): UPLOAD_TICKET,
    ("POST", "/seeder/chunks"): UPLOAD_TICKET,
    ("POST", "/seeder/fetch"): READ_TICKET,
    ("GET", "/seeder/chunk/{sha256}"): READ_TICKET,
    ("POST", "/seeder/delta"): READ_TICKET,
    ("POST", "/api/invitations"): ADMIN,
    ("GET", "/admin/login"): PUBLIC_PAGE,
    ("POST", "/admin/login"): PUBLIC_FORM,  # its own CSRF token, from the form's cookie
    ("GET", "/admin/join/{token}"): PUBLIC_PAGE,  # an invitation: the link's secret is the key
    ("POST", "/admin/join/{token}"): PUBLIC_FORM,
    ("GET", "/admin/static/{name}"): PUBLIC_PAGE,
    ("POST", "/admin/logout"): PAGE,
    ("GET", "/admin/"): PAGE,
    ("GET", "/admin/games"): PAGE,
    ("POST", "/admin/games"): PAGE,
    ("GET", "/admin/games/{slug}"): PAGE,
    ("POST", "/admin/games/{slug}"): PAGE,
    ("POST", "/admin/games/{slug}/steam"): PAGE,
    ("POST", "/admin/games/{slug}/delete"): PAGE,
    ("POST", "/admin/games/{slug}/builds/{version}"): PAGE,
    ("POST", "/admin/games/{slug}/builds/{version}/remove"): PAGE,
    ("POST", "/admin/games/{slug}/grants"): PAGE,
    ("POST", "/admin/games/{slug}/grants/{user}/revoke"): PAGE,
    ("GET", "/admin/users"): PAGE,
    ("POST", "/admin/users"): PAGE,
    ("GET", "/admin/users/{name}"): PAGE,
    ("POST", "/admin/users/{name}/password"): PAGE,
    ("POST", "/admin/users/{name}/disable"): PAGE,
    ("POST", "/admin/users/{name}/enable"): PAGE,
    ("POST", "/admin/users/{name}/admin"): PAGE,
    ("POST", "/admin/users/{name}/grants"): PAGE,
    ("GET", "/admin/invitations"): PAGE,
    ("POST", "/admin/invitations"): PAGE,
    ("POST", "/admin/invitations/{id}/withdraw"): PAGE,
    ("GET", "/admin/activity"): PAGE,
    ("GET", "/admin/jobs"): PAGE,
    ("POST", "/admin/jobs/{job}/retry"): PAGE,
    ("GET", "/admin/storage"): PAGE,
    ("POST", "/admin/storage/gc"): PAGE,
    ("POST", "/admin/storage/scrub"): PAGE,
    ("GET", "/admin/keys"): PAGE,
    ("GET", "/admin/events"): PAGE,
}
# The admin's calls change "target" (a new password ends its sessions), never a caller below.
PARAMS = {"file": "no-such-file.zip", "slug": "game", "version": "1", "name": "target", "user": "friend",
          "job": "no-such-job", "id": "1", "token": "no-such-invitation"}
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
    ctx = TrackerContext.open(backends.settings(tmp_path, admin_password="admin-password-1"))
    from tracker.routes.accounts import ensure_admin

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
    await client.post("/api/users", json={"name": "demoted", "password": "demoted-password", "admin": True}, headers=bearer)
    session, csrf = await sign_in(client, "admin", "admin-password-1")
    demoted, _ = await sign_in(client, "demoted", "demoted-password")
    ctx.db.call(lambda s: admin_views.set_admin(s, "demoted", False, ctx.now))
    ctx.sessions.changed("demoted")
    cookie = {"Cookie": f"mist_admin={session}"}
    callers = {
        "anonymous": {},
        "admin session": cookie,
        "admin session + CSRF, other site": {**cookie, "X-CSRF-Token": csrf, "Origin": "https://evil.example"},
        "session of an ex-admin": {"Cookie": f"mist_admin={demoted}"},
        "user": {"Authorization": f"Bearer {user}"},
        "granted user": {"Authorization": f"Bearer {granted}"},
        "admin": bearer,
        "forged token": {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.e30.forged"},
        "read ticket": {"Authorization": f"Ticket {read}"},
        "upload ticket": {"Authorization": f"Ticket {upload}"},
        "disabled user": {"Authorization": f"Bearer {gone}"},  # a token and a ticket issued before the disable
        "disabled user's ticket": {"Authorization": f"Ticket {gone_read}"},
        "admin session + CSRF": {**cookie, "X-CSRF-Token": csrf},  # last: its sign-out ends the session
    }
    return app, client, callers, chunked.chunks[0].sha256


def expected_denial(rule: str, caller: str, private: bool, method: str = "GET") -> int | str | None:
    """The status a caller must get ("login" for the site's redirect to its sign-in form), or None where it must
    get past the access check."""
    if rule in (PUBLIC, PUBLIC_PAGE):
        return None
    if rule == PUBLIC_FORM:
        return 403  # nobody here sends the form's own token
    if rule == PAGE:
        if caller == "session of an ex-admin":
            return "refused"  # told so once (403), then the ended session is sent to the sign-in form
        if not caller.startswith("admin session"):
            return "login"
        if method == "POST" and caller != "admin session + CSRF":
            return 403  # no token, or another site's form
        return None
    if caller.startswith(("admin session", "session of")):
        caller = "anonymous"  # the API reads no cookie
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
    # Last: what removes things (an admin's DELETE removes the build; the site's forms delete, disable, sign out).
    last_deletes = sorted(routes(app), key=lambda route: (route[0] == "DELETE", route[1].startswith("/admin/"),
                                                          route[1].endswith(("/delete", "/remove", "/logout"))))
    for method, template, slug in [(m, t, s) for m, t in last_deletes for s in ("game", "secret") if "{slug}" in t or s == "game"]:
        path = template.format(**{**PARAMS, "slug": slug, "sha256": chunk})
        for caller, headers in callers.items():
            client.session.cookie_jar.clear()  # each caller sends only its own headers
            body = bodies.get(template, json.dumps({}).encode())
            response = await client.request(method, path, data=body, headers=headers, allow_redirects=False)
            want = expected_denial(ACCESS[(method, template)], caller, private=slug == "secret", method=method)
            got = response.status
            to_login = got == 303 and response.headers.get("Location", "").startswith("/admin/login?next=")
            if want == "login":
                wrong = not to_login
            elif want == "refused":
                wrong = not (to_login or got == 403)
            else:
                wrong = (want is None and (got in (401, 403) or to_login)) or (want is not None and got != want)
            if wrong:
                failures.append(f"{caller:>14} {method} {path}: got {got}, want {want or 'past the access check'}")
            if template.startswith("/admin/"):
                assert got < 400 or response.content_type == "text/html", f"{method} {path}: an error page that is not HTML"
            else:
                assert response.content_type == "application/json" or got < 400, f"{method} {path}: non-JSON error"
            response.close()  # the live-updates stream would go on
    assert not failures, "\n".join(failures)
