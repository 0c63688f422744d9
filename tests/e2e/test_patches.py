"""Binary patches end to end: a file changed throughout travels as a patch, never as a wrong file.

A real mist-server makes the patches in its worker after each push
(`mistpipe push --wait` returns once they are made), or on demand for a jump
nobody asked for before; friends' `mist` processes plan with the tracker,
fetch patch objects from the seeder, apply them to their own files and verify
the result. Every way a patch can be wrong falls back to chunks.
"""

from __future__ import annotations

import hashlib
import random
import shutil
from pathlib import Path

from shared import compression, patch
from tests.e2e.conftest import Person, Server
from tests.e2e.gametree import MB, assert_same_tree, make_tree
from tests.waiting import wait_until

EXE = "bin/engine.so"


def recompiled(data: bytes, seed: int) -> bytes:
    """What a rebuild does to a binary: small changes all through it, so no chunk survives."""
    rng = random.Random(seed)
    out = bytearray(data)
    for offset in range(rng.randrange(512), len(out), 3000):
        out[offset] = rng.randrange(256)
    out[len(out) // 2 : len(out) // 2] = rng.randbytes(2000)
    return bytes(out)


def versions(root: Path, count: int, seed: int) -> list[Path]:
    """Builds 1..count: a small game whose 1.5 MB engine library is recompiled in every release."""
    first = make_tree(root / "1", seed=seed, small_files=12, large=(MB,))
    (first / "bin").mkdir(exist_ok=True)
    (first / EXE).write_bytes(random.Random(seed).randbytes(1536 * 1024))
    trees = [first]
    for n in range(2, count + 1):
        tree = root / str(n)
        shutil.copytree(trees[-1], tree)
        (tree / EXE).write_bytes(recompiled((tree / EXE).read_bytes(), seed * 100 + n))
        (tree / "assets" / "level1" / "item1.txt").write_text(f"release {n}")
        trees.append(tree)
    return trees


def push(admin: Person, game: str, tree: Path, version: str) -> dict:
    return admin.json("mistpipe", "push", game, str(tree), "--version", version, "--wait")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def patch_rows(server: Server, target: str) -> list[tuple[str, str, str | None, int]]:
    """(source content, algorithm, object, stored size) of every patch the tracker made or tried into `target`."""
    return server.sql("SELECT source_sha, algorithm, object_sha, stored_size FROM patches WHERE target_sha = :t", t=target)


def test_a_recompiled_binary_travels_as_a_patch(server: Server, admin: Person, friend: Person, tmp_path) -> None:
    v1, v2 = versions(tmp_path / "src", 2, seed=41)
    admin.run("mistpipe", "new-game", "forge", "--title", "Forge")
    push(admin, "forge", v1, "1")
    pushed = push(admin, "forge", v2, "2")
    assert pushed["patches"]["made"] >= 1, pushed
    game = tmp_path / "game"
    friend.json("mist", "install", "forge", "--dir", str(game), "--version", "1")

    preview = friend.json("mist", "update", "forge", "--to", "2", "--dry-run")
    exe = next(f for f in preview["files"] if f["path"] == EXE)
    assert exe["source"] == "patch" and exe["bytes"] * 20 < exe["chunk_bytes"], exe
    assert preview["plan"]["bytes_by_source"]["patch"] == exe["bytes"]

    done = friend.json("mist", "update", "forge", "--to", "2")
    assert done["files_by_source"]["patch"] == 1 and done["fell_back_to_chunks"] == []
    assert done["bytes_by_source"]["patch"] <= exe["bytes"] + 200
    assert done["bytes_downloaded"] * 10 < exe["chunk_bytes"], "the update should cost a fraction of the chunks"
    assert_same_tree(v2, game)


def test_an_uncommon_jump_follows_the_chain_of_patches_at_once_and_the_direct_patch_follows(
    server: Server, admin: Person, friend: Person, tmp_path,
) -> None:
    trees = versions(tmp_path / "src", 3, seed=42)
    admin.run("mistpipe", "new-game", "leap", "--title", "Leap")
    for n, tree in enumerate(trees, start=1):
        push(admin, "leap", tree, str(n))
    source, target = sha(trees[0] / EXE), sha(trees[2] / EXE)
    assert [(s, a) for s, a, _, _ in patch_rows(server, target)] == [(sha(trees[1] / EXE), "hdiff")]
    game = tmp_path / "game"
    friend.json("mist", "install", "leap", "--dir", str(game), "--version", "1")

    # The pushes made 1 -> 2 and 2 -> 3: the chain through 2 beats the quick zstd delta made while planning.
    middle = sha(trees[1] / EXE)
    [chain_cost] = [size for s, a, obj, size in patch_rows(server, middle) if s == source and a == "hdiff" and obj]
    chain_cost += next(size for s, a, obj, size in patch_rows(server, target) if s == middle and a == "hdiff" and obj)
    preview = friend.json("mist", "update", "leap", "--to", "3", "--dry-run")
    exe = next(f for f in preview["files"] if f["path"] == EXE)
    assert (exe["source"], exe["patches"], exe["bytes"]) == ("patch", 2, chain_cost), exe
    assert preview["plan"]["patches_coming"] == 1  # and the direct HDiffPatch patch 1 -> 3 is queued
    quick = next(size for s, a, obj, size in patch_rows(server, target) if s == source and a == "zstd" and obj)
    assert quick > chain_cost, "the quick zstd delta 1 -> 3 was made while planning, and costs more than the chain"

    jumped = friend.json("mist", "update", "leap", "--to", "3")
    assert jumped["files_by_source"]["patch"] == 1 and jumped["fell_back_to_chunks"] == []
    assert jumped["bytes_by_source"]["patch"] <= chain_cost + 400
    assert_same_tree(trees[2], game)

    def patches_made() -> dict:
        return {a: size for s, a, obj, size in patch_rows(server, target) if s == source and obj}

    # the worker makes the HDiffPatch patch 1 -> 3 that the plan said was coming
    made = wait_until(lambda: "hdiff" in (found := patches_made()) and found, "the worker's HDiffPatch patch 1 -> 3", 120, 0.1)
    assert made.keys() == {"zstd", "hdiff"} and made["hdiff"] < made["zstd"], made
    second = Person(friend.home.parent / "second-home", friend.password)
    second.run("mist", "login", server.url, "--user", friend.session()["user"])
    second.json("mist", "install", "leap", "--dir", str(tmp_path / "second"), "--version", "1")
    preview = second.json("mist", "update", "leap", "--to", "3", "--dry-run")
    exe = next(f for f in preview["files"] if f["path"] == EXE)
    assert exe["source"] == "patch" and exe["bytes"] == made["hdiff"]


def test_a_fresh_install_is_known_so_the_next_pushes_patch_from_it(
    server: Server, admin: Person, friend: Person, tmp_path,
) -> None:
    """Issue 19's jump: a friend installs 1 (no daemon), the admin pushes 2 and 3; the update to 3 moves the direct
    patch 1 -> 3 the push made, with nothing coming later."""
    trees = versions(tmp_path / "src", 3, seed=44)
    admin.run("mistpipe", "new-game", "skip", "--title", "Skip")
    push(admin, "skip", trees[0], "1")
    game = tmp_path / "game"
    friend.json("mist", "install", "skip", "--dir", str(game), "--version", "1")
    push(admin, "skip", trees[1], "2")
    push(admin, "skip", trees[2], "3")
    source, target = sha(trees[0] / EXE), sha(trees[2] / EXE)
    [direct] = [size for s, a, obj, size in patch_rows(server, target) if s == source and a == "hdiff" and obj]

    preview = friend.json("mist", "update", "skip", "--to", "3", "--dry-run")
    exe = next(f for f in preview["files"] if f["path"] == EXE)
    assert (exe["source"], exe["patches"], exe["bytes"]) == ("patch", 1, direct), exe
    assert preview["plan"]["patches_coming"] == 0
    done = friend.json("mist", "update", "skip", "--to", "3")
    assert done["bytes_by_source"]["patch"] <= direct + 200 and done["fell_back_to_chunks"] == []
    assert_same_tree(trees[2], game)


def test_a_file_moved_to_a_versioned_folder_travels_as_a_patch_from_its_old_name(
    server: Server, admin: Person, friend: Person, tmp_path,
) -> None:
    """Issue 19.3: a recompiled library that also moved (`lib-1/` -> `lib-2/`) is patched from the old file under
    its old name, which the update then deletes; the client finds the patch's source by its content."""
    v1, v2 = versions(tmp_path / "src", 2, seed=47)
    for n, tree in enumerate((v1, v2), start=1):
        (tree / f"lib-{n}").mkdir()
        (tree / EXE).rename(tree / f"lib-{n}" / "engine.so")
    admin.run("mistpipe", "new-game", "moving", "--title", "Moving")
    push(admin, "moving", v1, "1")
    game = tmp_path / "game"
    friend.json("mist", "install", "moving", "--dir", str(game), "--version", "1")
    pushed = push(admin, "moving", v2, "2")
    assert pushed["patches"]["made"] == 1, pushed
    source, target = sha(v1 / "lib-1" / "engine.so"), sha(v2 / "lib-2" / "engine.so")
    [(made_from, _, _, size)] = patch_rows(server, target)
    assert made_from == source

    moved = friend.json("mist", "update", "moving", "--to", "2")
    assert moved["files_by_source"]["patch"] == 1 and moved["fell_back_to_chunks"] == [], moved
    assert moved["bytes_by_source"]["patch"] <= size + 200
    assert moved["bytes_downloaded"] * 10 < (v2 / "lib-2" / "engine.so").stat().st_size
    assert_same_tree(v2, game)
    assert not (game / "lib-1").exists()


def scripts(root: Path, release: int, count: int = 24) -> Path:
    """A game of small script files sharing one vocabulary; each release renames a symbol in every one."""
    rng = random.Random(48)
    words = [rng.randbytes(rng.randrange(3, 9)).hex() for _ in range(400)]
    for i in range(count):
        text = " ".join(rng.choice(words) for _ in range(2500))
        for n in range(2, release + 1):
            text = text.replace(words[(i + n) % len(words)], f"renamed_in_{n}") + f"\nrelease {n}\n"
        (root / "scripts").mkdir(parents=True, exist_ok=True)
        (root / "scripts" / f"s{i:02}.lua").write_text(text)
    return root


def test_many_small_changed_files_travel_as_one_patch_bundle(server: Server, admin: Person, friend: Person, tmp_path) -> None:
    """Issue 19.3: 24 small files changed a little each come as one bundle, smaller than their 24 patches together;
    a bundle the store has let rot sends them to chunks, never a wrong byte."""
    v1, v2 = scripts(tmp_path / "src" / "1", 1), scripts(tmp_path / "src" / "2", 2)
    admin.run("mistpipe", "new-game", "lua", "--title", "Lua")
    push(admin, "lua", v1, "1")
    game = tmp_path / "game"
    friend.json("mist", "install", "lua", "--dir", str(game), "--version", "1")
    pushed = push(admin, "lua", v2, "2")
    assert pushed["patches"]["bundles"] == 1, pushed
    rows = [row for f in sorted((v2 / "scripts").iterdir()) for row in patch_rows(server, sha(f))]
    bundle = {obj for _, a, obj, _ in rows if a == "bundle"}
    [(name, bundle_size)] = {(obj, size) for _, a, obj, size in rows if a == "bundle"}
    separate = sum(size for _, a, obj, size in rows if a == "hdiff" and obj)
    assert len(rows) == 48 and bundle == {name} and bundle_size < separate, (bundle_size, separate)

    preview = friend.json("mist", "update", "lua", "--to", "2", "--dry-run")
    assert {f["source"] for f in preview["files"]} == {"bundle"}
    assert sum(f["bytes"] for f in preview["files"]) == bundle_size == preview["plan"]["bytes_by_source"]["patch"]
    done = friend.json("mist", "update", "lua", "--to", "2")
    assert done["files_by_source"]["patch"] == 24 and done["fell_back_to_chunks"] == [], done
    assert done["bytes_by_source"]["patch"] <= bundle_size + 200 and done["bytes_by_source"]["chunks"] == 0
    assert_same_tree(v2, game)

    friend.json("mist", "update", "lua", "--to", "1")
    original = server.store_path(name).read_bytes()
    rotten = bytearray(compression.decompress(original, compression.content_size(original)))
    rotten[-1] ^= 0xFF
    server.store_path(name).write_bytes(compression.compress(bytes(rotten)))
    moved = friend.json("mist", "update", "lua", "--to", "2")
    assert sorted(moved["fell_back_to_chunks"]) == sorted(f"scripts/{f.name}" for f in (v2 / "scripts").iterdir())
    assert moved["files_by_source"]["patch"] == 0
    assert_same_tree(v2, game)
    server.store_path(name).write_bytes(original)


def test_every_wrong_patch_falls_back_to_chunks(server: Server, admin: Person, friend: Person, tmp_path) -> None:
    v1, v2 = versions(tmp_path / "src", 2, seed=43)
    admin.run("mistpipe", "new-game", "trap", "--title", "Trap")
    push(admin, "trap", v1, "1")
    push(admin, "trap", v2, "2")
    source, target = sha(v1 / EXE), sha(v2 / EXE)
    [(_, _, honest, _)] = patch_rows(server, target)

    # 1. A valid patch object that makes another file of the build: it verifies as a patch, not as this file.
    other = v2 / "data" / "pak0.bin"
    impostor = patch.make((v1 / EXE).read_bytes(), other.read_bytes(), patch.HDIFF)
    name = patch.object_name(impostor)
    stored = compression.compress(impostor, 19)
    server.store_path(name).parent.mkdir(parents=True, exist_ok=True)
    server.store_path(name).write_bytes(stored)
    server.sql("UPDATE patches SET object_sha = :o, object_size = :n, stored_size = 1 WHERE target_sha = :t",
               o=name, n=len(impostor), t=target)
    game = tmp_path / "game"
    friend.json("mist", "install", "trap", "--dir", str(game), "--version", "1")
    moved = friend.json("mist", "update", "trap", "--to", "2")
    assert moved["fell_back_to_chunks"] == [EXE] and moved["files_by_source"]["patch"] == 0
    assert_same_tree(v2, game)

    # 2. The honest patch, but bit rot in the store: its bytes no longer hash to its name.
    server.sql("UPDATE patches SET object_sha = :o WHERE target_sha = :t", o=honest, t=target)
    original = server.store_path(honest).read_bytes()
    flipped = bytearray(compression.decompress(original, compression.content_size(original)))
    flipped[-1] ^= 0xFF
    server.store_path(honest).write_bytes(compression.compress(bytes(flipped)))
    friend.json("mist", "update", "trap", "--to", "1")
    moved = friend.json("mist", "update", "trap", "--to", "2")
    assert moved["fell_back_to_chunks"] == [EXE]
    assert_same_tree(v2, game)
    server.store_path(honest).write_bytes(original)

    # 3. The right patch, but the friend's own copy of the old file is damaged (same size): never applied.
    friend.json("mist", "update", "trap", "--to", "1")
    data = bytearray((game / EXE).read_bytes())
    data[1000] ^= 0xFF
    (game / EXE).write_bytes(bytes(data))
    moved = friend.json("mist", "update", "trap", "--to", "2")
    assert moved["fell_back_to_chunks"] == [EXE]
    assert_same_tree(v2, game)
    assert source != target


def test_a_modded_file_is_repaired_with_an_rdiff_delta(server: Server, admin: Person, friend: Person, tmp_path) -> None:
    [v1] = versions(tmp_path / "src", 1, seed=44)
    admin.run("mistpipe", "new-game", "modded", "--title", "Modded")
    push(admin, "modded", v1, "1")
    game = tmp_path / "game"
    friend.json("mist", "install", "modded", "--dir", str(game))
    data = (game / EXE).read_bytes()
    (game / EXE).write_bytes(data[:600_000] + b"a friend's mod" * 10 + data[600_000:])

    report = friend.json("mist", "verify", "modded", "--repair")
    repaired = report["repaired"]
    assert report["files_bad"] == [EXE] and repaired["files_by_source"]["rdiff"] == 1, repaired
    assert repaired["rdiff_signature_bytes"] > 0
    assert repaired["bytes_by_source"]["rdiff"] < 50_000 and repaired["bytes_by_source"]["chunks"] == 0
    assert_same_tree(v1, game)


def test_a_same_size_mod_fails_the_patch_and_is_updated_by_its_own_rdiff_delta(
    server: Server, admin: Person, friend: Person, tmp_path,
) -> None:
    [v1] = versions(tmp_path / "src", 1, seed=45)
    v2 = tmp_path / "src" / "2"
    shutil.copytree(v1, v2)
    engine = (v2 / EXE).read_bytes()
    (v2 / EXE).write_bytes(engine[:1_000_000] + b"hotfix" * 50 + engine[1_000_300:])  # one small edit
    admin.run("mistpipe", "new-game", "tinker", "--title", "Tinker")
    push(admin, "tinker", v1, "1")
    push(admin, "tinker", v2, "2")
    game = tmp_path / "game"
    friend.json("mist", "install", "tinker", "--dir", str(game), "--version", "1")
    data = bytearray((game / EXE).read_bytes())
    for offset in range(50_000, len(data), 100_000):
        data[offset] ^= 0xFF  # a mod all through the file that keeps its size: the install record still trusts it
    (game / EXE).write_bytes(bytes(data))

    moved = friend.json("mist", "update", "tinker", "--to", "2")
    assert moved["fell_back_to_chunks"] == [EXE], moved  # the patch starts from the unmodded file
    assert moved["files_by_source"]["rdiff"] == 1 and moved["bytes_by_source"]["chunks"] == 0, moved
    assert moved["bytes_by_source"]["rdiff"] < 100_000 and moved["rdiff_signature_bytes"] > 0
    assert_same_tree(v2, game)


def test_a_patch_the_seeder_cannot_supply_costs_only_its_own_file(server: Server, admin: Person, friend: Person, tmp_path) -> None:
    v1, v2 = versions(tmp_path / "src", 2, seed=46)
    second = "data/pak0.bin"
    (v2 / second).write_bytes(recompiled((v1 / second).read_bytes(), 4600))
    admin.run("mistpipe", "new-game", "halves", "--title", "Halves")
    push(admin, "halves", v1, "1")
    push(admin, "halves", v2, "2")
    [(_, _, gone, _)] = patch_rows(server, sha(v2 / EXE))
    server.store_path(gone).unlink()  # lost from the store after the plan was made
    game = tmp_path / "game"
    friend.json("mist", "install", "halves", "--dir", str(game), "--version", "1")

    moved = friend.json("mist", "update", "halves", "--to", "2")
    assert moved["fell_back_to_chunks"] == [EXE] and moved["files_by_source"]["patch"] == 1, moved
    assert moved["bytes_by_source"]["patch"] > 0
    assert_same_tree(v2, game)
