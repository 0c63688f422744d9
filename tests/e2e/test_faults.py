"""Bad input and hostile conditions: each ends in a clear one-line error and nothing wrong on disk."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from shared import compression, pack
from shared.signing import Signer
from tests.e2e.conftest import ADMIN_PASSWORD, Person, Server
from tests.e2e.gametree import MB, make_tree, snapshot

GAME = "faults"


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory, admin: Person) -> Path:
    tree = make_tree(tmp_path_factory.mktemp("faults-build") / "1", seed=21, small_files=30, large=(3 * MB,))
    admin.run("mistpipe", "new-game", GAME, "--title", "Faults")
    admin.json("mistpipe", "push", GAME, str(tree), "--version", "1")
    return tree


def one_line_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def token(server: Server, user: str, password: str) -> str:
    status, body = http("POST", f"{server.url}/api/login", json.dumps({"user": user, "password": password}).encode())
    assert status == 200
    return json.loads(body)["access_token"]


def test_wrong_password_is_refused(server: Server, tmp_path) -> None:
    person = Person(tmp_path / "home", "not-the-password")
    one_line_error(person.run("mist", "login", server.url, "--user", "admin", check=False), "wrong user name or password")
    one_line_error(person.run("mist", "ls", check=False), "not logged in", "mist login")


def test_unreachable_server_says_so(tmp_path) -> None:
    person = Person(tmp_path / "home", "whatever-1")
    one_line_error(person.run("mist", "login", "http://127.0.0.1:9", "--user", "x", check=False), "cannot reach")


def test_push_refuses_names_that_collide_on_case_insensitive_disks(admin: Person, build: Path, tmp_path) -> None:
    tree = tmp_path / "cased"
    tree.mkdir()
    (tree / "Readme.txt").write_text("a")
    (tree / "README.txt").write_text("b")
    one_line_error(admin.run("mistpipe", "push", GAME, str(tree), "--version", "2", check=False), "differ only in case")


def test_manifest_signed_by_another_key_is_rejected(build: Path, friend: Person, tmp_path) -> None:
    creds = friend.session()
    creds["public_key"] = Signer.generate().public_key  # as if a different tracker answered
    (friend.home / "credentials-mist.json").write_text(json.dumps(creds))
    target = tmp_path / GAME
    one_line_error(friend.run("mist", "install", GAME, "--dir", str(target), check=False), "signature")
    assert not target.exists() or snapshot(target) == {}


def test_a_corrupt_chunk_from_the_seeder_is_never_written(server: Server, admin: Person, friend: Person, tmp_path) -> None:
    tree = make_tree(tmp_path / "src", seed=22, small_files=5, large=(2 * MB,))
    admin.run("mistpipe", "new-game", "corrupt", "--title", "Corrupt")
    pushed = admin.json("mistpipe", "push", "corrupt", str(tree), "--version", "1")
    from mistpipe.scan import scan

    manifest = scan(tree, "corrupt", "1")
    victim = max(manifest.files, key=lambda f: f.size).chunks[0]
    stored = server.store_path(victim.sha256)
    original = stored.read_bytes()
    stored.write_bytes(compression.compress(os.urandom(victim.size)))  # right size, wrong bytes
    try:
        target = tmp_path / "install"
        one_line_error(friend.run("mist", "install", "corrupt", "--dir", str(target), check=False), "corrupt", "admin")
        assert snapshot(target) == {}  # nothing swapped in
    finally:
        stored.write_bytes(original)
    assert pushed["chunks_total"] > 0


def test_an_update_that_does_not_fit_stops_before_downloading(admin: Person, friend: Person, tmp_path) -> None:
    small = tmp_path / "small-disk"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(small)], check=True)
    try:
        tree = make_tree(tmp_path / "huge", seed=23, small_files=3, large=(16 * MB,))
        admin.run("mistpipe", "new-game", "huge", "--title", "Huge")
        admin.json("mistpipe", "push", "huge", str(tree), "--version", "1")
        result = friend.run("mist", "install", "huge", "--dir", str(small / "huge"), check=False)
        one_line_error(result, "free", "bytes")
        assert not list((small / "huge").rglob("*.bin"))
        assert sum(p.stat().st_size for p in small.rglob("*") if p.is_file()) < 1 * MB
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_a_planted_symlink_cannot_redirect_writes_outside_the_install(build, friend: Person, tmp_path) -> None:
    target = tmp_path / GAME
    friend.json("mist", "install", GAME, "--dir", str(target))
    outside = tmp_path / "outside"
    outside.mkdir()
    level = target / "assets" / "level1"
    for item in level.rglob("*"):
        if item.is_file():
            item.unlink()
    for item in sorted(level.rglob("*"), reverse=True):
        item.rmdir()
    level.rmdir()
    level.symlink_to(outside, target_is_directory=True)
    result = friend.run("mist", "verify", GAME, "--repair", check=False)
    one_line_error(result, "outside")
    assert list(outside.iterdir()) == []


def test_seeder_serves_only_chunks_of_the_ticket_build(server: Server, build: Path, admin: Person, friend: Person) -> None:
    from mistpipe.scan import scan

    own = max(scan(build, GAME, "1").files, key=lambda f: f.size).chunks[0].sha256
    other_game = [g for g in admin.json("mistpipe", "ls")["games"] if g["slug"] != GAME and g["builds"]][0]
    access = token(server, "admin", ADMIN_PASSWORD)
    status, body = http("POST", f"{server.url}/api/games/{GAME}/builds/1/ticket", b"", {"Authorization": f"Bearer {access}"})
    ticket = json.loads(body)["ticket"]
    headers = {"Authorization": f"Ticket {ticket}"}
    status, body = http("POST", f"{server.url}/seeder/fetch", pack.encode_hashes([own]), headers)
    assert status == 200 and [r.sha256 for r in pack.iter_records(body)] == [own]
    stranger = "ab" * 32
    status, body = http("POST", f"{server.url}/seeder/fetch", pack.encode_hashes([stranger]), headers)
    assert status == 403 and b"not part of the build" in body
    status, _ = http("POST", f"{server.url}/seeder/fetch", pack.encode_hashes([own]), {"Authorization": "Ticket forged.x"})
    assert status == 403
    status, _ = http("POST", f"{server.url}/seeder/chunks", pack.encode([]), headers)  # a read ticket cannot upload
    assert status == 403
    assert other_game["slug"] != GAME


def test_seeder_refuses_an_upload_whose_bytes_do_not_match_its_name(server: Server) -> None:
    access = token(server, "admin", ADMIN_PASSWORD)
    _, body = http("POST", f"{server.url}/api/upload-ticket", b"", {"Authorization": f"Bearer {access}"})
    headers = {"Authorization": f"Ticket {json.loads(body)['ticket']}"}
    lie = "cd" * 32
    bad = pack.encode([pack.Record(pack.CHUNK, lie, compression.compress(b"hello world"))])
    status, body = http("POST", f"{server.url}/seeder/chunks", bad, headers)
    assert status == 422 and b"hashes to" in body
    assert not server.store_path(lie).exists()
    status, _ = http("POST", f"{server.url}/seeder/chunks", bad[:-20], headers)  # truncated upload
    assert status == 400


def test_tracker_refuses_a_build_whose_chunks_are_not_uploaded(server: Server, build: Path, tmp_path) -> None:
    from mistpipe.scan import scan

    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "never-uploaded.bin").write_bytes(os.urandom(100_000))
    manifest = scan(tmp_path / "new", GAME, "9")
    access = token(server, "admin", ADMIN_PASSWORD)
    status, body = http("POST", f"{server.url}/api/games/{GAME}/builds", manifest.canonical_bytes(),
                        {"Authorization": f"Bearer {access}", "Content-Type": "application/json"})
    assert status == 409
    assert json.loads(body)["detail"]["missing_count"] == len(manifest.chunk_sizes())


def test_admin_routes_need_an_admin(server: Server, friend: Person) -> None:
    user_token = token(server, friend.session()["user"], friend.password)
    for path in ("/api/games", "/api/upload-ticket", "/api/users"):
        status, body = http("POST", f"{server.url}{path}", b"{}", {"Authorization": f"Bearer {user_token}"})
        assert status == 403, path
        status, body = http("POST", f"{server.url}{path}", b"{}")
        assert status == 401, path
    status, body = http("GET", f"{server.url}/api/games", None, {"Authorization": "Bearer not-a-jwt"})
    assert status == 401 and b"log in again" in body


def test_a_full_store_disk_stops_the_push_with_a_clear_error_and_no_build(tmp_path) -> None:
    from tests.e2e.conftest import start_server

    small = tmp_path / "small-store"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=10m", "tmpfs", str(small)], check=True)
    server = start_server(small / "data")
    reserve = small / "reserve"  # what the admin will free: how much the push left is up to timing, this is not
    reserve.write_bytes(b"\0" * (2 * MB))
    try:
        admin = Person(tmp_path / "admin", ADMIN_PASSWORD)
        admin.run("mistpipe", "login", server.url, "--user", "admin")
        admin.run("mistpipe", "new-game", "big", "--title", "Big")
        tree = make_tree(tmp_path / "big", seed=51, small_files=3, large=(16 * MB,))
        result = admin.run("mistpipe", "push", "big", str(tree), "--version", "1", check=False)
        one_line_error(result, "out of disk space", "push again")
        assert admin.json("mistpipe", "ls", "big")["games"][0]["builds"] == []
        assert not list((small / "data" / "store").rglob(".tmp-*"))  # no half-written chunk left behind
        status, body = http("GET", f"{server.url}/healthz")
        assert status == 503 and "free on the disk" in json.loads(body)["disk"]  # under MIST_DISK_MIN_FREE
        filler = small / "filler"
        with open(filler, "wb", buffering=0) as f:  # every last block, so the database cannot write either
            try:  # unbuffered: nothing is left to flush when the file closes on a full disk
                while True:
                    f.write(b"\0" * 65536)
            except OSError:
                pass
        refused = admin.run("mistpipe", "user", "add", "late", check=False, env={"MIST_PASSWORD": "late-password-1"})
        one_line_error(refused, "the server's disk is full", "free space")  # not "the database is unavailable"
        filler.unlink()
        reserve.unlink()
        admin.run("mistpipe", "user", "add", "late", env={"MIST_PASSWORD": "late-password-1"})
    finally:
        server.process.terminate()
        server.process.wait(timeout=10)
        subprocess.run(["umount", str(small)], check=True)


def test_an_expired_access_token_is_refreshed_and_the_old_refresh_token_dies(build, friend: Person, server: Server) -> None:
    creds = friend.session()
    creds["access_expires"] = 0  # as if the 15 minutes had passed
    (friend.home / "credentials-mist.json").write_text(json.dumps(creds))
    assert friend.json("mist", "ls")["games"]
    renewed = friend.session()
    assert renewed["refresh_token"] != creds["refresh_token"] and renewed["access_expires"] > 0
    status, body = http("POST", f"{server.url}/api/refresh", json.dumps({"refresh_token": creds["refresh_token"]}).encode())
    assert status == 401 and b"log in again" in body  # refresh tokens rotate: a stolen old one is useless


def test_requests_at_once_with_an_expired_access_token_refresh_it_once_and_all_go_through(friend: Person) -> None:
    """Refresh tokens rotate and the tracker grants one refresh per token: two requests that each refreshed
    on their own would leave one of them refused ("log in again"). An install asks for its plan and its seeder
    ticket at once, and a daemon makes many calls together."""
    import asyncio

    from client import credentials
    from client.api import Api

    creds = friend.session()
    creds["access_expires"] = 0
    (friend.home / "credentials-mist.json").write_text(json.dumps(creds))
    saved = credentials.load(friend.home, "mist")
    refreshed: list[str] = []

    async def together() -> list[dict]:
        async with Api(saved, on_refresh=lambda c: refreshed.append(c.refresh_token)) as api:
            return await asyncio.gather(*(api.call("GET", "/api/games") for _ in range(4)))

    answers = asyncio.run(together())
    assert all("games" in a for a in answers) and len(refreshed) == 1


def test_two_commands_on_one_install_do_not_interleave(build, friend: Person, tmp_path) -> None:
    import fcntl
    import hashlib

    target = tmp_path / GAME
    friend.json("mist", "install", GAME, "--dir", str(target))
    assert not (target / ".mist").exists()
    name = hashlib.sha256(str(target.resolve()).encode()).hexdigest()[:24]
    with open(friend.home / "locks" / f"{name}.lock", "w") as held:  # as another mist process holds it
        fcntl.flock(held, fcntl.LOCK_EX)
        one_line_error(friend.run("mist", "verify", GAME, "--repair", check=False), "another mist command")
    assert friend.json("mist", "verify", GAME)["ok"] is True


def test_logout_forgets_the_session(friend: Person) -> None:
    assert friend.json("mist", "ls")["games"] is not None
    assert (friend.home / "credentials-mist.json").stat().st_mode & 0o777 == 0o600  # tokens readable by the user only
    assert "Logged out." in friend.run("mist", "logout").stderr
    assert not (friend.home / "credentials-mist.json").exists()
    one_line_error(friend.run("mist", "ls", check=False), "not logged in")
    assert "Was not logged in." in friend.run("mist", "logout").stderr


def test_a_second_server_on_a_taken_port_says_so_in_one_line(server: Server, tmp_path) -> None:
    from tests.e2e.conftest import BIN

    port = server.url.rsplit(":", 1)[1]
    result = subprocess.run([BIN / "mist-server", "--data", str(tmp_path / "data"), "--port", port],
                            capture_output=True, text=True, timeout=60, env={**os.environ, "MIST_ADMIN_PASSWORD": "x" * 12})
    one_line_error(result, "cannot listen", "another --port")


def test_a_push_that_would_be_refused_uploads_nothing(server: Server, admin: Person, build: Path) -> None:
    before = sum(1 for p in (server.data / "store").rglob("*") if p.is_file())
    one_line_error(admin.run("mistpipe", "push", GAME, str(build), "--version", "1.0 beta", check=False), "version must be like")
    one_line_error(admin.run("mistpipe", "push", "no-such-game", str(build), "--version", "2", check=False), "no game")
    assert sum(1 for p in (server.data / "store").rglob("*") if p.is_file()) == before


def test_the_data_directory_is_the_servers_alone(build, server: Server) -> None:
    import stat

    assert stat.S_IMODE(server.data.stat().st_mode) == 0o700
    for name in ("jobs.db", "jwt.secret"):
        assert stat.S_IMODE((server.data / name).stat().st_mode) == 0o600, name
    if (server.data / "tracker.db").exists():  # SQLite (the PostgreSQL pass keeps it in PostgreSQL)
        assert stat.S_IMODE((server.data / "tracker.db").stat().st_mode) == 0o600
    stored = [p for p in (server.data / "store").rglob("*") if p.is_file()]
    assert stored and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in stored)  # private games' chunks too
