"""The admin site against a real tracker (its database and job queue are this run's: SQLite, or PostgreSQL and
Redis in the second pass): sign-in and its refusals, sessions that end, CSRF and origin checks, the headers,
invitations, the activity log with the bytes chart, jobs, storage, and the live updates."""

from __future__ import annotations

import re
import time

import pytest

from shared import compression
from shared.chunking import DEFAULT_PARAMS, chunk_bytes
from shared.manifest import FileEntry, Manifest
from shared.signing import fingerprint
from tests import backends
from tests.clock import Clock
from tests.tracker.admin_site import FIELD_ERROR, csrf_of, sign_in
from tests.tracker.test_body_limits import raw_request
from tracker.admin import activity_page
from tracker.cli.mist_server import build_app
from tracker.config import TrackerContext
from tracker.db import activity, job_log
from tracker.routes.accounts import ensure_admin
from tracker.throttle import Throttle

ADMIN_PASSWORD = "admin-password-1"
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\ssrc=)[^>]*>", re.I)
INLINE_STYLE = re.compile(r"<style|\sstyle=|\son[a-z]+=", re.I)
DATA = b"a build of a game, of a single file " * 200


@pytest.fixture
async def site(tmp_path, aiohttp_client, monkeypatch):
    """(context, test client, admin's Bearer header, admin's session cookie header, its CSRF token, the clock)."""
    clock = Clock(time.time())
    ctx = TrackerContext.open(backends.settings(tmp_path, admin_password=ADMIN_PASSWORD, clock=clock))
    ensure_admin(ctx)
    app = build_app(ctx, worker=False)  # jobs wait in the queue, where the tests look for them
    client = await aiohttp_client(app)
    login = await client.post("/api/login", json={"user": "admin", "password": ADMIN_PASSWORD})
    bearer = {"Authorization": f"Bearer {(await login.json())['access_token']}"}
    cookie, csrf = await sign_in(client, "admin", ADMIN_PASSWORD)
    return ctx, client, bearer, {"Cookie": f"mist_admin={cookie}"}, csrf, clock


async def add_user(client, bearer, name: str, admin: bool = False) -> None:
    answer = await client.post("/api/users", json={"name": name, "password": f"{name}-password", "admin": admin},
                               headers=bearer)
    assert answer.status == 201, await answer.text()


async def push(ctx, client, bearer, slug: str, version: str, data: bytes = DATA) -> str:
    chunked = chunk_bytes(data)
    assert len(chunked.chunks) == 1  # smaller than a chunk's minimum: the file is its one chunk
    ctx.store.put(chunked.chunks[0].sha256, compression.compress(data))
    manifest = Manifest(slug, version, DEFAULT_PARAMS, (FileEntry("game.bin", len(data), False, chunked.sha256, chunked.chunks),))
    answer = await client.post(f"/api/games/{slug}/builds", data=manifest.canonical_bytes(), headers=bearer)
    assert answer.status == 201, await answer.text()
    return manifest.digest()


async def test_sign_in_refuses_wrong_passwords_and_plain_users_and_shares_the_api_throttle(site) -> None:
    ctx, client, bearer, _, _, _ = site
    await add_user(client, bearer, "alice")
    client.session.cookie_jar.clear()
    token = csrf_of(await (await client.get("/admin/login")).text())
    wrong = await client.post("/admin/login", data={"csrf": token, "user": "admin", "password": "nope"})
    assert wrong.status == 401 and "wrong user name or password" in FIELD_ERROR.findall(await wrong.text())
    plain = await client.post("/admin/login", data={"csrf": token, "user": "alice", "password": "alice-password"},
                              allow_redirects=False)
    assert plain.status == 403 and "alice cannot use the admin site" in await plain.text()
    assert "mist_admin" not in plain.cookies  # no session for a plain user
    kinds = [(e.kind, e.user) for e in await ctx.db.run(lambda s: activity.recent(s, kinds=("login_failed",)))]
    assert ("login_failed", "admin") in kinds and ("login_failed", "alice") in kinds
    ctx.throttle = Throttle(slow_after=100, refuse_after=2)  # the one throttle of the API and the site
    for _ in range(2):
        assert (await client.post("/api/login", json={"user": "admin", "password": "guess"})).status == 401
    refused = await client.post("/admin/login", data={"csrf": token, "user": "admin", "password": ADMIN_PASSWORD})
    assert refused.status == 429 and "too many failed logins" in await refused.text()


@pytest.mark.parametrize("change", ["password", "disable", "admin-off"])
async def test_a_session_ends_when_its_account_changes(site, change: str) -> None:
    ctx, client, bearer, cookie, csrf, _ = site
    await add_user(client, bearer, "second", admin=True)
    theirs, _ = await sign_in(client, "second", "second-password")
    theirs_header = {"Cookie": f"mist_admin={theirs}"}
    assert (await client.get("/admin/games", headers=theirs_header, allow_redirects=False)).status == 200
    path, form = {"password": ("/admin/users/second/password", {"password": "a-new-password"}),
                  "disable": ("/admin/users/second/disable", {}),
                  "admin-off": ("/admin/users/second/admin", {"admin": "off"})}[change]
    done = await client.post(path, data={"csrf": csrf, **form}, headers=cookie, allow_redirects=False)
    assert done.status == 303, await done.text()
    ended = await client.get("/admin/games", headers=theirs_header, allow_redirects=False)
    assert ended.status == 403 and "second cannot use the admin site" in await ended.text()
    again = await client.get("/admin/games", headers=theirs_header, allow_redirects=False)
    assert again.status == 303 and again.headers["Location"].startswith("/admin/login?next=")


async def test_a_form_without_its_token_or_from_another_site_changes_nothing(site) -> None:
    ctx, client, _, cookie, csrf, _ = site
    game = {"slug": "hollow", "title": "Hollow Knight"}
    attempts = [({}, cookie), ({"csrf": "forged"}, cookie), ({"csrf": csrf}, {**cookie, "Origin": "https://evil.example"}),
                ({"csrf": csrf}, {**cookie, "Referer": "https://evil.example/page"}), ({"csrf": csrf}, {"Origin": "null", **cookie})]
    for extra, headers in attempts:
        answer = await client.post("/admin/games", data={**game, **extra}, headers=headers, allow_redirects=False)
        assert answer.status == 403, (extra, headers)
        assert "nothing was changed" in await answer.text()
    assert (await client.get("/admin/games/hollow", headers=cookie)).status == 404
    own = {**cookie, "Origin": str(client.make_url("")).rstrip("/")}
    made = await client.post("/admin/games", data={**game, "csrf": csrf}, headers=own, allow_redirects=False)
    assert made.status == 303 and made.headers["Location"].startswith("/admin/games/hollow")


async def test_a_form_body_over_the_limit_is_refused_before_it_is_read(site) -> None:
    """The sign-in and join pages answer anyone: a huge body (declared, or chunked with no length) gets 413 without
    the tracker holding it, and a form of the right size still signs in."""
    ctx, client, _, _, _, _ = site
    too_big = 200 * 1024 * 1024
    for path in ("/admin/login", "/admin/join/some-token"):
        head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {too_big}\r\n\r\n")
        assert (await raw_request(client, head)).startswith(b"HTTP/1.1 413"), path  # not one byte of it was sent
    piece = b"a" * 65536
    chunked = b"".join(b"%x\r\n" % len(piece) + piece + b"\r\n" for _ in range(4)) + b"0\r\n\r\n"
    head = ("POST /admin/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            "Transfer-Encoding: chunked\r\n\r\n")
    assert (await raw_request(client, head, chunked)).startswith(b"HTTP/1.1 413")
    client.session.cookie_jar.clear()
    assert (await sign_in(client, "admin", ADMIN_PASSWORD))[0]  # a form of a normal size is read as before


async def test_every_page_sends_the_security_headers_and_holds_no_inline_script_or_style(site) -> None:
    ctx, client, bearer, cookie, csrf, _ = site
    await client.post("/api/games", json={"slug": "hollow", "title": "Hollow <b>Knight</b>"}, headers=bearer)
    pages = ["/admin/", "/admin/games", "/admin/games/hollow", "/admin/users", "/admin/users/admin", "/admin/invitations",
             "/admin/activity", "/admin/jobs", "/admin/storage", "/admin/keys"]
    for path in pages + ["/admin/login", "/admin/no-such-page"]:
        answer = await client.get(path, headers=cookie)
        html = await answer.text()
        assert answer.status == (404 if "no-such" in path else 200), path
        csp = answer.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe" not in csp, path
        assert answer.headers["X-Frame-Options"] == "DENY" and answer.headers["Cache-Control"] == "no-store", path
        assert not INLINE_SCRIPT.search(html) and not INLINE_STYLE.search(html), path
        assert "<b>Knight</b>" not in html  # a title is text, never markup
    client.session.cookie_jar.clear()
    plain = await client.get("/admin/login")
    over_https = await client.get("/admin/login", headers={"X-Forwarded-Proto": "https"})
    for answer, secure in ((plain, False), (over_https, True)):
        sent = answer.cookies["mist_admin_login"]
        assert sent["httponly"] and sent["samesite"] == "Strict" and bool(sent["secure"]) == secure


async def test_an_invitation_makes_an_account_once_and_then_expires(site) -> None:
    ctx, client, bearer, cookie, csrf, clock = site
    made = await client.post("/api/invitations", json={"name": "bob", "days": 2}, headers=bearer)
    assert made.status == 201
    link = (await made.json())["url"]
    path = link[link.index("/admin/join/"):]
    twice = await client.post("/api/invitations", json={"name": "bob"}, headers=bearer)
    assert twice.status == 409 and "open invitation" in (await twice.json())["error"]
    client.session.cookie_jar.clear()
    form = await client.get(path)
    token = csrf_of(await form.text())
    short = await client.post(path, data={"csrf": token, "password": "short", "repeat": "short"})
    assert short.status == 400 and "at least 8 characters" in await short.text()
    welcome = await client.post(path, data={"csrf": token, "password": "bob-password", "repeat": "bob-password"})
    html = await welcome.text()
    assert welcome.status == 200 and fingerprint(ctx.signer.public_key) in html
    assert str(client.make_url("")).rstrip("/") in html and 'href="/get"' in html
    assert (await client.post("/api/login", json={"user": "bob", "password": "bob-password"})).status == 200
    used = await client.get(path)
    assert used.status == 404 and "was used already" in await used.text()
    later = await (await client.post("/api/invitations", json={"name": "carol", "days": 2}, headers=bearer)).json()
    clock.now += 2 * 86400 + 1
    expired = await client.get(later["url"][later["url"].index("/admin/join/"):])
    assert expired.status == 404 and "has expired" in await expired.text()


async def test_downloads_reach_the_log_and_the_chart_and_old_events_are_pruned(site, monkeypatch) -> None:
    ctx, client, bearer, cookie, csrf, clock = site
    await client.post("/api/games", json={"slug": "hollow", "title": "Hollow Knight"}, headers=bearer)
    first = await push(ctx, client, bearer, "hollow", "1.0")
    second = await push(ctx, client, bearer, "hollow", "1.1", DATA + b"patched")
    await add_user(client, bearer, "alice")
    token = (await (await client.post("/api/login", json={"user": "alice", "password": "alice-password"})).json())["access_token"]
    async with client.ws_connect("/api/swarm", headers={"Authorization": f"Bearer {token}"}) as ws:
        await ws.receive_json()  # welcome
        for digest, peers, seeder in ((first, 0, 3_000_000), (second, 2_000_000, 500_000)):
            await ws.send_json({"op": "tally", "build": digest, "bytes_from_peers": peers,
                                "chunks_from_peers": 1 if peers else 0, "bytes_from_seeder": seeder, "id": 1})
            assert (await ws.receive_json())["op"] == "tallied"
    events = await ctx.db.run(lambda s: activity.recent(s, user="alice", kinds=("install", "update")))
    assert [(e.kind, e.version, e.summary) for e in events] == [("update", "1.1", "from 1.0"), ("install", "1.0", "")]
    page = " ".join((await (await client.get("/admin/", headers=cookie)).text()).split())
    assert "Last 24 hours: 3.5 MB from the seeder, 2.0 MB between friends (36% from friends)" in page
    game = await (await client.get("/admin/games/hollow", headers=cookie)).text()
    assert "1 hold it · 1 download" in game  # alice holds 1.1 now
    only = await (await client.get("/admin/activity?user=alice&kind=downloads", headers=cookie)).text()
    assert only.count('class="event" data-kind=') == 2 and 'data-kind="push"' not in only
    ctx.settings.activity_days = 1
    clock.now += 86400 + 60
    assert await ctx.db.run(lambda s: activity.recent(s))
    await client.app.loop.run_in_executor(None, activity_page.prune_now, client.app._subapps[0])
    assert not await ctx.db.run(lambda s: activity.recent(s))


async def test_a_failed_job_is_retried_with_its_arguments(site) -> None:
    ctx, client, bearer, cookie, csrf, clock = site
    await ctx.db.run(lambda s: job_log.started(s, "job-1", "sync_steam", ["hollow"], clock.now))
    await ctx.db.run(lambda s: job_log.failed(s, "job-1", clock.now, "SteamError: the store is down"))
    page = await (await client.get("/admin/jobs", headers=cookie)).text()
    assert "SteamError: the store is down" in page and "/admin/jobs/job-1/retry" in page
    retried = await client.post("/admin/jobs/job-1/retry", data={"csrf": csrf}, headers=cookie, allow_redirects=False)
    assert retried.status == 303
    new_id = re.search(r"name=([\w-]+)", retried.headers["Location"]).group(1)
    assert ctx.jobs.known(new_id)
    row = await ctx.db.run(lambda s: job_log.get(s, new_id))
    assert row is not None and row.retry_of == "job-1"
    again = await client.post("/admin/jobs/no-such/retry", data={"csrf": csrf}, headers=cookie)
    assert again.status == 404


async def test_storage_shows_what_a_collection_would_free(site, monkeypatch) -> None:
    ctx, client, bearer, cookie, csrf, _ = site
    ctx.settings.gc_grace = 0
    orphan = b"chunks an interrupted push left behind " * 50
    ctx.store.put(chunk_bytes(orphan).sha256, compression.compress(orphan))
    page = await (await client.get("/admin/storage", headers=cookie)).text()
    assert re.search(r"would remove <strong>1</strong> object\s", page), page
    started = await client.post("/admin/storage/gc", data={"csrf": csrf}, headers=cookie, allow_redirects=False)
    assert started.status == 303 and "gc-queued" in started.headers["Location"]


async def test_users_page_validates_beside_the_field_and_guards_the_last_admin(site) -> None:
    ctx, client, bearer, cookie, csrf, _ = site
    await add_user(client, bearer, "alice")
    taken = await client.post("/admin/users", data={"csrf": csrf, "name": "alice", "password": "another-password"},
                              headers=cookie)
    assert taken.status == 400 and FIELD_ERROR.findall(await taken.text()) == ["there is an account alice already; pick another name"]
    self_off = await client.post("/admin/users/admin/admin", data={"csrf": csrf, "admin": "off"}, headers=cookie)
    assert self_off.status == 409 and "ask another admin" in await self_off.text()
    await client.post("/api/games", json={"slug": "secret", "title": "Secret", "private": True}, headers=bearer)
    granted = await client.post("/admin/users/alice/grants", data={"csrf": csrf, "game": "secret"}, headers=cookie,
                                allow_redirects=False)
    assert granted.status == 303
    token = (await (await client.post("/api/login", json={"user": "alice", "password": "alice-password"})).json())["access_token"]
    games = await (await client.get("/api/games", headers={"Authorization": f"Bearer {token}"})).json()
    assert [g["slug"] for g in games["games"]] == ["secret"]


async def test_the_live_stream_sends_the_jobs_and_friends_online(site) -> None:
    ctx, client, bearer, cookie, csrf, _ = site
    stream = await client.get("/admin/events", headers=cookie)
    assert stream.headers["Content-Type"] == "text/event-stream"
    seen = b""
    while b"event: online" not in seen or b"event: jobs" not in seen:
        seen += await stream.content.readany()
    assert b"No friend's client is connected now." in seen
    stream.close()


async def test_release_notes_and_launch_commands_are_edited_with_errors_beside_the_field(site) -> None:
    ctx, client, bearer, cookie, csrf, _ = site
    await client.post("/api/games", json={"slug": "hollow", "title": "Hollow Knight"}, headers=bearer)
    await push(ctx, client, bearer, "hollow", "1.0")
    wrong = await client.post("/admin/games/hollow/builds/1.0", headers=cookie,
                              data={"csrf": csrf, "notes": "Faster loading.", "launch": "bin/missing --fast"})
    assert wrong.status == 400 and "not a file of hollow 1.0" in " ".join(FIELD_ERROR.findall(await wrong.text()))
    saved = await client.post("/admin/games/hollow/builds/1.0", headers=cookie, allow_redirects=False,
                              data={"csrf": csrf, "notes": "Faster loading.\nFixed the bridge.", "launch": "game.bin --fast"})
    assert saved.status == 303
    bad_game = await client.post("/admin/games/hollow", headers=cookie,
                                 data={"csrf": csrf, "title": "Hollow Knight", "launch": "'unclosed"})
    assert bad_game.status == 400 and "check its quotes" in " ".join(FIELD_ERROR.findall(await bad_game.text()))
    build = (await (await client.get("/api/games/hollow", headers=bearer)).json())["builds"][0]
    assert (build["notes"], build["launch"], build["launch_from"]) == ("Faster loading.\nFixed the bridge.", "game.bin --fast", "build")
