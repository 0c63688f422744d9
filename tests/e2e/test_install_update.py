"""The admin pushes three versions; friends install and move between any two, bit for bit."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import time
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from mistpipe.scan import scan
from shared import manifest_delta, signing
from shared.errors import SignatureError
from tests.e2e.conftest import Person, Server
from tests.e2e.gametree import assert_same_tree, make_tree, next_version

GAME = "hollow"
VERSIONS = ("1.0", "1.1", "1.2")
RECORD_OVERHEAD = 37  # pack record header per chunk


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory, admin: Person) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("builds")
    trees = {"1.0": make_tree(base / "1.0", seed=1)}
    trees["1.1"] = next_version(trees["1.0"], base / "1.1", seed=2)
    trees["1.2"] = next_version(trees["1.1"], base / "1.2", seed=3)
    hour_ago = time.time() - 3600  # older than the push cache's racy window, as a real build folder is
    for path in base.rglob("*"):
        if path.is_file() and not path.is_symlink():
            os.utime(path, (hour_ago, hour_ago))
    admin.run("mistpipe", "new-game", GAME, "--title", "Hollow Knight")
    return trees


@pytest.fixture(scope="module")
def pushes(builds: dict[str, Path], admin: Person) -> dict[str, dict]:
    return {v: admin.json("mistpipe", "push", GAME, str(builds[v]), "--version", v) for v in VERSIONS}


def chunks_of(tree: Path) -> dict[str, int]:
    return scan(tree, GAME, "0").chunk_sizes()


def test_push_uploads_only_chunks_the_store_lacks(builds, pushes) -> None:
    first, second = pushes["1.0"], pushes["1.1"]
    assert first["chunks_uploaded"] == first["chunks_total"] == len(chunks_of(builds["1.0"]))
    new_chunks = set(chunks_of(builds["1.1"])) - set(chunks_of(builds["1.0"]))
    assert second["chunks_uploaded"] == len(new_chunks)
    assert second["bytes_uploaded"] < first["bytes_uploaded"] / 4
    assert second["files"] == sum(1 for p in builds["1.1"].rglob("*") if p.is_file())
    assert second["bytes_total"] == sum(p.stat().st_size for p in builds["1.1"].rglob("*") if p.is_file())
    # The first push sends its manifest whole; the next ones as a delta from the build before (the tracker
    # rebuilt it exactly: its digest is the folder's, and friends install it bit for bit below).
    whole = scan(builds["1.1"], GAME, "1.1").canonical_bytes()
    assert first["manifest_bytes"] == len(scan(builds["1.0"], GAME, "1.0").canonical_bytes())
    assert second["manifest_bytes"] < len(whole) / 3 and second["digest"] == hashlib.sha256(whole).hexdigest()


def test_pushing_the_same_build_again_uploads_nothing(builds, pushes, admin) -> None:
    again = admin.json("mistpipe", "push", GAME, str(builds["1.0"]), "--version", "1.0")
    assert again["chunks_uploaded"] == 0 and again["digest"] == pushes["1.0"]["digest"]
    assert pushes["1.0"]["files_read"] == pushes["1.0"]["files"]
    assert (again["files_read"], again["bytes_read"]) == (0, 0)  # the push cache knew every file
    rescanned = admin.json("mistpipe", "push", GAME, str(builds["1.0"]), "--version", "1.0", "--rescan")
    assert rescanned["files_read"] == rescanned["files"] and rescanned["digest"] == pushes["1.0"]["digest"]


def test_pushing_other_content_under_an_existing_version_is_refused(builds, pushes, admin) -> None:
    result = admin.run("mistpipe", "push", GAME, str(builds["1.1"]), "--version", "1.0", check=False)
    assert result.returncode != 0
    assert "already exists with other content" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_ls_shows_the_catalog_with_versions(pushes, friend: Person) -> None:
    listing = friend.json("mist", "ls")
    game = next(g for g in listing["games"] if g["slug"] == GAME)
    assert [b["version"] for b in game["builds"]] == list(VERSIONS)
    assert game["latest"] == "1.2" and game["installed"] is None


def test_install_newest_then_every_version_to_every_other(builds, pushes, friend: Person, server: Server, tmp_path) -> None:
    target = tmp_path / "games" / GAME
    result = friend.json("mist", "install", GAME, "--dir", str(target))
    assert result["version"] == "1.2"
    assert_same_tree(builds["1.2"], target)
    assert not (target / ".mist").exists()
    for old, new in itertools.permutations(VERSIONS, 2):
        if friend.json("mist", "ls")["games"][0]["installed"]["version"] != old:
            friend.json("mist", "update", GAME, "--to", old)
        lacking = set(chunks_of(builds[new])) - set(chunks_of(builds[old]))
        wire_bound = sum(server.store_size(h) + RECORD_OVERHEAD for h in lacking) + 64 * RECORD_OVERHEAD
        moved = friend.json("mist", "update", GAME, "--to", new)
        assert_same_tree(builds[new], target)
        assert moved["version"] == new
        assert 0 < moved["bytes_downloaded"] <= wire_bound, (old, new, moved)
        assert moved["bytes_reused"] > 0


def test_update_leaves_unchanged_files_untouched(builds, pushes, friend: Person, tmp_path) -> None:
    target = tmp_path / GAME
    friend.json("mist", "install", GAME, "--dir", str(target), "--version", "1.0")
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in target.rglob("*") if p.is_file()}
    moved = friend.json("mist", "update", GAME, "--to", "1.1")
    changed = {p for p in before if p.exists() and (p.stat().st_ino, p.stat().st_mtime_ns) != before[p]}
    same = {rel for rel in (p.relative_to(target) for p in before)
            if (builds["1.1"] / rel).exists()
            and (builds["1.0"] / rel).read_bytes() == (builds["1.1"] / rel).read_bytes()
            and (builds["1.0"] / rel).stat().st_mode == (builds["1.1"] / rel).stat().st_mode}
    assert len(same) > 250
    assert not {p.relative_to(target) for p in changed} & same
    new_or_changed = [p for p in builds["1.1"].rglob("*") if p.is_file() and not (
        (builds["1.0"] / p.relative_to(builds["1.1"])).is_file()
        and (builds["1.0"] / p.relative_to(builds["1.1"])).read_bytes() == p.read_bytes())]
    assert moved["files_written"] == len(new_or_changed)
    assert moved["bytes_written"] == sum(p.stat().st_size for p in new_or_changed)


def test_second_install_of_another_game_reuses_chunks_from_the_first(builds, pushes, admin, friend, tmp_path) -> None:
    admin.run("mistpipe", "new-game", "hollow-demo", "--title", "Hollow Knight Demo")
    admin.json("mistpipe", "push", "hollow-demo", str(builds["1.1"]), "--version", "0.9")
    friend.json("mist", "install", GAME, "--dir", str(tmp_path / "full"), "--version", "1.0")
    demo = friend.json("mist", "install", "hollow-demo", "--dir", str(tmp_path / "demo"))
    assert_same_tree(builds["1.1"], tmp_path / "demo")
    assert demo["bytes_reused"] > demo["bytes_downloaded"]


def test_verify_finds_damage_and_repair_fixes_it_from_local_chunks(builds, pushes, friend, tmp_path) -> None:
    target = tmp_path / GAME
    friend.json("mist", "install", GAME, "--dir", str(target), "--version", "1.1")
    assert friend.json("mist", "verify", GAME) == {"game": GAME, "version": "1.1", "ok": True, "files_bad": []}
    pak = target / "data" / "pak0.bin"
    data = bytearray(pak.read_bytes())
    data[100_000] ^= 0xFF
    pak.write_bytes(bytes(data))
    (target / "empty.cfg").unlink()
    failed = friend.run("mist", "verify", GAME, "--json", check=False)
    assert failed.returncode == 1
    assert '"files_bad": ["data/pak0.bin", "empty.cfg"]' in failed.stdout
    repaired = friend.json("mist", "verify", GAME, "--repair")["repaired"]
    assert_same_tree(builds["1.1"], target)
    assert repaired["bytes_downloaded"] < 300_000  # one chunk, not the whole 6 MB file


def test_a_folder_deleted_by_hand_is_installed_again_from_the_network_at_once(builds, pushes, friend, tmp_path) -> None:
    target = tmp_path / GAME
    friend.json("mist", "install", GAME, "--dir", str(target), "--version", "1.1")
    shutil.rmtree(target)  # the friend deletes the game's folder, and installs it again
    again = friend.json("mist", "install", GAME, "--dir", str(target), "--version", "1.1")
    assert_same_tree(builds["1.1"], target)
    # Not planned from the files that are gone (each chunk was looked for in them before it was fetched).
    assert again["plan"]["bytes_from_local"] == 0
    assert again["bytes_reused"] == 0 and again["bytes_downloaded"] > 0
    assert again["bytes_written"] == sum(p.stat().st_size for p in builds["1.1"].rglob("*") if p.is_file())
    shutil.rmtree(target)  # deleted again: a repair (or an update) makes the folder again and fills it
    assert friend.json("mist", "verify", GAME, "--repair")["repaired"]["bytes_reused"] == 0
    assert_same_tree(builds["1.1"], target)


def test_a_lost_build_record_is_fetched_again_and_one_the_tracker_lost_too_is_said(builds, pushes, admin, friend, tmp_path) -> None:
    # A friend clears MIST_HOME/builds by hand: the next command fetches the signed manifest again.
    friend.json("mist", "install", GAME, "--dir", str(tmp_path / GAME), "--version", "1.0")
    kept = friend.home / "builds"
    for path in kept.iterdir():
        path.unlink()
    assert friend.json("mist", "verify", GAME)["ok"] is True
    assert sorted(p.suffix for p in kept.iterdir()) == [".index", ".manifest"]
    for path in kept.iterdir():
        path.unlink()
    updated = friend.json("mist", "update", GAME, "--to", "1.1")
    assert updated["version"] == "1.1"
    assert_same_tree(builds["1.1"], tmp_path / GAME)
    # Gone from the tracker as well: said, with what to do, and nothing else of the install is touched.
    admin.run("mistpipe", "new-game", "hollow-lost", "--title", "Lost")
    admin.json("mistpipe", "push", "hollow-lost", str(builds["1.2"]), "--version", "1")
    friend.json("mist", "install", "hollow-lost", "--dir", str(tmp_path / "lost"))
    admin.run("mistpipe", "rm", "hollow-lost", "1")
    for path in kept.iterdir():
        path.unlink()
    refused = friend.run("mist", "verify", GAME, check=False)
    assert refused.returncode == 1 and "the tracker no longer has that build" in refused.stderr, refused.stderr
    assert "ask the admin" in refused.stderr and "Traceback" not in refused.stderr
    assert_same_tree(builds["1.1"], tmp_path / GAME)


def test_uninstall_removes_the_game_but_not_the_players_files(pushes, friend, tmp_path) -> None:
    target = tmp_path / GAME
    friend.json("mist", "install", GAME, "--dir", str(target))
    (target / "savegame.dat").write_text("level 12")
    friend.run("mist", "uninstall", GAME)
    assert [p.name for p in target.iterdir()] == ["savegame.dat"]
    assert friend.json("mist", "ls")["games"][0]["installed"] is None


def test_installing_over_someone_elses_files_needs_overwrite_and_matching_files_are_adopted(builds, pushes, friend, tmp_path) -> None:
    target = tmp_path / GAME
    (target / "bin").mkdir(parents=True)
    (target / "bin" / "game").write_bytes(b"my own launcher script")
    (target / "empty.cfg").write_bytes(b"")  # same content as the build's: adopted, not rewritten
    refused = friend.run("mist", "install", GAME, "--dir", str(target), "--version", "1.0", check=False)
    assert refused.returncode != 0 and "--overwrite" in refused.stderr and "bin/game" in refused.stderr
    assert (target / "bin" / "game").read_bytes() == b"my own launcher script"
    installed = friend.json("mist", "install", GAME, "--dir", str(target), "--version", "1.0", "--overwrite")
    assert_same_tree(builds["1.0"], target)
    assert installed["files_unchanged"] == 1  # empty.cfg was adopted as it was


def _get(server: Server, person: Person, path: str) -> tuple[bytes, dict[str, str]]:
    request = urllib.request.Request(server.url + path, headers={"Authorization": f"Bearer {person.session()['access_token']}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read(), dict(response.headers)


def test_a_friend_holding_a_build_gets_the_next_manifest_as_a_delta(pushes, friend: Person, server: Server) -> None:
    old, _ = _get(server, friend, f"/api/games/{GAME}/builds/1.0/manifest")
    whole, whole_headers = _get(server, friend, f"/api/games/{GAME}/builds/1.1/manifest")
    delta, headers = _get(server, friend, f"/api/games/{GAME}/builds/1.1/manifest?from={pushes['1.0']['digest']}")
    assert headers["Content-Type"] == manifest_delta.CONTENT_TYPE and headers["X-Mist-Delta-From"] == pushes["1.0"]["digest"]
    assert len(delta) < len(whole) / 3
    assert manifest_delta.apply(old, delta, headers["X-Mist-Digest"]) == whole
    assert headers["X-Mist-Signature"] == whole_headers["X-Mist-Signature"]  # the same signed bytes, rebuilt
    info = json.loads(urllib.request.urlopen(server.url + "/api/info", timeout=30).read())
    signing.verify(info["public_key"], manifest_delta.apply(old, delta, headers["X-Mist-Digest"]), headers["X-Mist-Signature"])
    # Both answers also vouch for the digest, which a friend checks without holding the manifest whole to verify.
    assert hashlib.sha256(whole).hexdigest() == headers["X-Mist-Digest"] == whole_headers["X-Mist-Digest"]
    for answer in (headers, whole_headers):
        signing.verify(info["public_key"], signing.manifest_digest(answer["X-Mist-Digest"]), answer["X-Mist-Digest-Signature"])
    with pytest.raises(SignatureError):  # it vouches for that manifest only
        signing.verify(info["public_key"], signing.manifest_digest(pushes["1.0"]["digest"]), headers["X-Mist-Digest-Signature"])
    # A base the tracker does not know (or the friend may not see), the build itself, or no digest: sent whole.
    for base in ("ab" * 32, pushes["1.1"]["digest"], "not-a-digest"):
        body, plain = _get(server, friend, f"/api/games/{GAME}/builds/1.1/manifest?from={base}")
        assert body == whole and "X-Mist-Delta-From" not in plain


def test_an_update_reads_the_new_manifest_as_a_delta_from_the_installed_one(builds, pushes, friend: Person, server: Server,
                                                                           tmp_path: Path) -> None:
    target = tmp_path / "games" / GAME
    fresh = friend.json("mist", "install", GAME, "--dir", str(target), "--version", "1.1")
    whole, _ = _get(server, friend, f"/api/games/{GAME}/builds/1.2/manifest")
    moved = friend.json("mist", "update", GAME, "--to", "1.2")
    assert_same_tree(builds["1.2"], target)
    assert fresh["manifest_bytes"] > 0 and moved["manifest_bytes"] < len(whole) / 3
    # In entries, applied from the kept manifest's file to the new one's: kept as the tracker's bytes, nothing left over.
    entries, headers = _get(server, friend, f"/api/games/{GAME}/builds/1.2/manifest?from={pushes['1.1']['digest']}&delta=entries")
    assert manifest_delta.read_header(entries).entries and headers["X-Mist-Delta-From"] == pushes["1.1"]["digest"]
    assert moved["manifest_bytes"] == len(entries)
    kept = friend.home / "builds"
    assert (kept / f"{pushes['1.2']['digest']}.manifest").read_bytes() == whole
    assert not list(kept.glob("*.part")) and not list(kept.glob("*.tmp"))


async def test_a_daemon_learns_a_build_it_does_not_hold_from_a_delta_of_entries(builds, pushes, friend: Person,
                                                                                server: Server, tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from client import credentials
    from client.api import Api
    from client.sharing import Library
    from client.state import State
    from shared.build_index import BuildIndex

    friend.json("mist", "install", GAME, "--dir", str(tmp_path / "games" / GAME), "--version", "1.1")
    whole, _ = _get(server, friend, f"/api/games/{GAME}/builds/1.2/manifest")
    state = State(friend.home)
    try:
        async with Api(credentials.load(friend.home, "mist"), on_refresh=lambda c: None) as api:
            library = Library(state, api)
            library.refresh()

            def scanned(data: bytes) -> BuildIndex:
                raise AssertionError("the new build's manifest was scanned: its index was not made from the held one")

            monkeypatch.setattr(BuildIndex, "scan", scanned)
            chunks = await library.learn(pushes["1.2"]["digest"], GAME, "1.2")  # what a friend on 1.2 asks this daemon for
            monkeypatch.undo()
        made = library._other[pushes["1.2"]["digest"]]
        assert set(chunks) == set(BuildIndex.scan(whole).chunk_names)
        assert list(made.files()) == list(BuildIndex.scan(whole).files()) and made._spans is not None
        assert not list((friend.home / "builds").glob("*.part"))
    finally:
        state.close()


def test_a_kept_manifest_damaged_on_disk_makes_the_update_fetch_the_whole_one(builds, pushes, friend: Person,
                                                                              server: Server, tmp_path: Path) -> None:
    target = tmp_path / "games" / GAME
    friend.json("mist", "install", GAME, "--dir", str(target), "--version", "1.1")
    held = friend.home / "builds" / f"{pushes['1.1']['digest']}.manifest"
    damaged = bytearray(held.read_bytes())
    damaged[len(damaged) // 2] ^= 1  # inside a file entry the next build copies as it is
    held.write_bytes(bytes(damaged))
    moved = friend.json("mist", "update", GAME, "--to", "1.2")
    assert_same_tree(builds["1.2"], target)
    whole = (friend.home / "builds" / f"{pushes['1.2']['digest']}.manifest").read_bytes()
    entries, _ = _get(server, friend, f"/api/games/{GAME}/builds/1.2/manifest?from={pushes['1.1']['digest']}&delta=entries")
    assert hashlib.sha256(whole).hexdigest() == pushes["1.2"]["digest"]
    assert moved["manifest_bytes"] > 2 * len(entries)  # the delta that failed, and the whole manifest after it
    assert not list((friend.home / "builds").glob("*.part"))


async def test_a_manifest_delta_from_a_build_the_tracker_lacks_is_refused_with_what_to_do(pushes, admin: Person,
                                                                                       server: Server) -> None:
    unknown = manifest_delta.make(b'{"not":"a build"}', b'{"a":"manifest"}')
    form = aiohttp.FormData()
    form.add_field("manifest_delta", unknown, filename="manifest.delta")
    headers = {"Authorization": f"Bearer {admin.session('mistpipe')['access_token']}"}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server.url}/api/games/{GAME}/builds", data=form, headers=headers) as response:
            assert response.status == 400
            assert "push again, and the whole manifest is sent" in (await response.json())["error"]
