"""A push asks the seeder only about the chunks the latest build did not have, and the tracker's commit checks
only those are stored (mistpipe/push.py, tracker/commit_check.py): a 100 GB build with 1 GB changed costs the
server 1% of its chunks. Yet a build never commits with a chunk missing from the store: one of the latest build
that the scrub set aside is uploaded again by the next push, and `--rescan` asks about every chunk."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from mistpipe.scan import scan
from shared.manifest import Manifest
from tests.e2e.conftest import Person, Server
from tests.e2e.gametree import MB, assert_same_tree, make_tree


def rewrite(tree: Path, seed: int) -> str:
    """Give the smallest file of the tree new bytes; its path."""
    victim = min((p for p in tree.rglob("*") if p.is_file()), key=lambda p: (p.stat().st_size, p.as_posix()))
    victim.write_bytes(random.Random(seed).randbytes(victim.stat().st_size + 1000))
    return victim.relative_to(tree).as_posix()


def chunks_of(manifest: Manifest, path: str) -> set[str]:
    return {ref.sha256 for f in manifest.files if f.path == path for ref in f.chunks}


def unchanged_chunk(manifest: Manifest, changed: str) -> str:
    """A chunk of the build's biggest file, which `rewrite` leaves alone."""
    biggest = max(manifest.files, key=lambda f: f.size)
    assert biggest.path != changed
    return biggest.chunks[1].sha256


@pytest.fixture
def game(admin: Person, request: pytest.FixtureRequest) -> str:
    slug = request.node.name.removeprefix("test_").replace("_", "-")[:40].strip("-")
    admin.run("mistpipe", "new-game", slug, "--title", slug)
    return slug


def test_a_push_asks_only_about_the_chunks_of_what_changed(admin: Person, game: str, tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "build", seed=41, small_files=30, large=(2 * MB,))
    first = admin.json("mistpipe", "push", game, str(tree), "--version", "1")
    assert first["chunks_asked"] == first["chunks_total"]  # no build before it: every chunk

    changed = rewrite(tree, 1)
    second = admin.json("mistpipe", "push", game, str(tree), "--version", "2")
    fresh = chunks_of(scan(tree, game, "2"), changed)
    assert second["chunks_asked"] == len(fresh) < second["chunks_total"]
    assert second["chunks_uploaded"] == len(fresh)


def test_a_chunk_of_the_latest_build_the_scrub_set_aside_is_uploaded_by_the_next_push(
    server: Server, admin: Person, friend: Person, game: str, tmp_path: Path
) -> None:
    tree = make_tree(tmp_path / "build", seed=42, small_files=30, large=(2 * MB,))
    admin.json("mistpipe", "push", game, str(tree), "--version", "1")
    changed = rewrite(tree, 2)
    victim = unchanged_chunk(scan(tree, game, "2"), changed)
    server.store_path(victim).write_bytes(b"\x28\xb5\x2f\xfd flipped bits")
    assert victim in admin.json("mistpipe", "scrub")["result"]["corrupt"]

    pushed = admin.json("mistpipe", "push", game, str(tree), "--version", "2")
    fresh = chunks_of(scan(tree, game, "2"), changed)
    assert victim not in fresh and pushed["chunks_asked"] == len(fresh)  # the seeder was not asked about it first
    assert pushed["chunks_uploaded"] == len(fresh) + 1  # the tracker named it missing, and the push sent it
    assert server.store_path(victim).is_file()
    friend.json("mist", "install", game, "--dir", str(tmp_path / "game"))
    assert_same_tree(tree, tmp_path / "game")


def test_a_rescan_asks_about_every_chunk_and_restores_one_lost_from_the_store(
    server: Server, admin: Person, friend: Person, game: str, tmp_path: Path
) -> None:
    tree = make_tree(tmp_path / "build", seed=43, small_files=30, large=(2 * MB,))
    admin.json("mistpipe", "push", game, str(tree), "--version", "1")
    changed = rewrite(tree, 3)
    lost = unchanged_chunk(scan(tree, game, "2"), changed)
    server.store_path(lost).unlink()  # not by the scrub: only a push that asks about every chunk notices

    pushed = admin.json("mistpipe", "push", game, str(tree), "--version", "2", "--rescan")
    assert pushed["chunks_asked"] == pushed["chunks_total"]
    assert pushed["chunks_uploaded"] == len(chunks_of(scan(tree, game, "2"), changed)) + 1
    friend.json("mist", "install", game, "--dir", str(tmp_path / "game"))
    assert_same_tree(tree, tmp_path / "game")


def test_a_builds_stored_size_is_its_chunks_as_stored_when_the_previous_builds_sizes_are_reused(
    server: Server, admin: Person, game: str, tmp_path: Path
) -> None:
    """The commit asks the store for the sizes of the new chunks only and takes the others from the previous
    build's commit (tracker/routes/builds.py `_stored_sizes`); the sum must still be every chunk as stored."""
    tree = make_tree(tmp_path / "build", seed=44, small_files=30, large=(2 * MB, MB))  # a compressible pack too
    admin.json("mistpipe", "push", game, str(tree), "--version", "1")
    rewrite(tree, 4)
    admin.json("mistpipe", "push", game, str(tree), "--version", "2")
    second = next(b for b in admin.json("mistpipe", "ls", game)["games"][0]["builds"] if b["version"] == "2")
    chunks = scan(tree, game, "2").chunk_sizes()
    assert second["stored_size"] == sum(server.store_path(h).stat().st_size for h in chunks)
    assert second["stored_size"] < sum(chunks.values())  # compressed: not the raw sizes
