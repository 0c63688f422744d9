"""The garbage collector: its pure decision from sets, then a real store and database after a build is removed."""

from __future__ import annotations

import hashlib
import os
import random
import time
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from shared import chunkstore, compression
from shared.chunking import DEFAULT_PARAMS, chunk_bytes
from shared.chunkstore import DirectoryChunkStore
from shared.manifest import FileEntry, Manifest
from tests import backends
from tracker.db import patches as patch_queries, queries
from tracker.db.engine import Database, migrate, open_engine
from tracker.db.models import Install, Patch
from tracker.jobs import gc
from tracker.jobs.gc import Live, PatchRow, Stored, decide, mark
from tracker.settings import GRACE_ENV, GRACE_SECONDS, Settings, SettingsError

DAY = 24 * 3600
NOW = 1_700_000_000.0
OLD, YOUNG = NOW - 2 * DAY, NOW - 60
CUTOFF = NOW - DAY


def h(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


def live(objects: set[str], contents: set[str]) -> Live:
    return Live(frozenset(objects), frozenset(contents), 1)


# The decision, from sets


def test_mark_collects_chunks_manifests_and_file_contents() -> None:
    data = b"x" * 5000
    chunked = chunk_bytes(data)
    manifest = Manifest("g", "1", DEFAULT_PARAMS, (FileEntry("a.bin", len(data), False, chunked.sha256, chunked.chunks),))
    marked = mark([(manifest.digest(), manifest)])
    assert marked.objects == {manifest.digest(), *(ref.sha256 for ref in chunked.chunks)}
    assert marked.contents == {chunked.sha256}
    assert marked.builds == 1


def test_only_old_objects_nobody_needs_are_removed() -> None:
    stored = {h("live"): Stored(OLD, 1), h("dead"): Stored(OLD, 2), h("pushing"): Stored(YOUNG, 3)}
    decision = decide(stored, live({h("live")}, set()), [], CUTOFF)
    assert decision.remove == {h("dead")}
    assert (decision.kept_live, decision.kept_young) == (1, 1)


def test_an_object_used_exactly_at_the_cutoff_stays() -> None:
    decision = decide({h("dead"): Stored(CUTOFF, 1)}, live(set(), set()), [], CUTOFF)
    assert decision.remove == frozenset()


def test_a_patch_into_a_live_content_stays_whatever_its_source() -> None:
    into_live = PatchRow(1, h("patch-in"), h("live-file"), OLD)
    into_removed = PatchRow(2, h("patch-out"), h("removed-file"), OLD)
    stored = {h("patch-in"): Stored(OLD, 1), h("patch-out"): Stored(OLD, 1)}
    decision = decide(stored, live(set(), {h("live-file")}), [into_live, into_removed], CUTOFF)
    assert decision.remove == {h("patch-out")}
    assert decision.forget == {2}


def test_markers_go_with_their_target_but_not_while_young() -> None:
    rows = [
        PatchRow(1, None, h("live-file"), OLD),  # chunks were cheaper, target still live: keep it so nobody retries
        PatchRow(2, None, h("removed-file"), OLD),
        PatchRow(3, None, h("new-file"), YOUNG),  # a patch job for a build committed after the catalog was read
    ]
    decision = decide({}, live(set(), {h("live-file")}), rows, CUTOFF)
    assert decision.forget == {2}


def test_a_young_patch_object_keeps_its_row_until_both_go() -> None:
    row = PatchRow(1, h("patch"), h("removed-file"), OLD)
    decision = decide({h("patch"): Stored(YOUNG, 1)}, live(set(), set()), [row], CUTOFF)
    assert decision.remove == frozenset() and decision.forget == frozenset()


def test_a_row_whose_object_is_already_gone_is_forgotten_with_its_target() -> None:
    rows = [PatchRow(1, h("quarantined"), h("removed-file"), OLD), PatchRow(2, h("quarantined2"), h("live-file"), OLD)]
    decision = decide({}, live(set(), {h("live-file")}), rows, CUTOFF)
    assert decision.forget == {1}  # a live target's row is the scrub's business, not the collector's


@pytest.mark.parametrize("value, grace", [("", GRACE_SECONDS), ("0", 0.0), ("90", 90.0)])
def test_the_grace_period_comes_from_the_environment(tmp_path, value, grace) -> None:
    assert Settings.from_env(tmp_path, {GRACE_ENV: value}).gc_grace == grace


@pytest.mark.parametrize("value", ["soon", "-5"])
def test_a_grace_period_that_is_no_number_of_seconds_stops_the_start(tmp_path, value) -> None:
    with pytest.raises(SettingsError, match=f"{GRACE_ENV} must be a number of seconds"):
        Settings.from_env(tmp_path, {GRACE_ENV: value})


# A real store and database


def put(store: DirectoryChunkStore, data: bytes) -> str:
    name = hashlib.sha256(data).hexdigest()
    store.put(name, compression.compress(data))
    return name


def age(store: DirectoryChunkStore, when: float) -> None:
    for name in store.names():
        os.utime(store.path(name), (when, when))


def entry(store: DirectoryChunkStore, path: str, data: bytes) -> FileEntry:
    chunked = chunk_bytes(data)
    offset = 0
    for ref in chunked.chunks:
        put(store, data[offset : offset + ref.size])
        offset += ref.size
    return FileEntry(path, len(data), False, chunked.sha256, chunked.chunks)


def commit(db: Database, store: DirectoryChunkStore, manifest: Manifest) -> None:
    data = manifest.canonical_bytes()
    digest = put(store, data)
    db.call(lambda s: queries.add_build(s, manifest.game, manifest.version, digest, data, "sig",
                                        manifest.total_size, len(manifest.files), len(manifest.chunk_sizes()), 0))


def test_removing_a_build_then_collecting_keeps_exactly_what_is_needed(tmp_path: Path) -> None:
    store = DirectoryChunkStore(tmp_path / "store", durable=False)
    engine = open_engine(backends.database_url(tmp_path))
    migrate(engine)
    db = Database(engine)
    db.call(lambda s: queries.add_game(s, "g", "G"))
    db.call(lambda s: queries.add_user(s, "friend", "x", False))
    rng = random.Random(5)
    shared_data = rng.randbytes(200_000)  # several chunks, in both builds
    old_pak, new_pak = rng.randbytes(30_000), rng.randbytes(30_000)
    shared_file = entry(store, "common.bin", shared_data)
    v1 = Manifest("g", "1", DEFAULT_PARAMS, (shared_file, entry(store, "pak.bin", old_pak)))
    v2 = Manifest("g", "2", DEFAULT_PARAMS, (shared_file, entry(store, "pak.bin", new_pak)))
    commit(db, store, v1)
    commit(db, store, v2)
    db.call(lambda s: patch_queries.record_install(s, "friend", "g", v1.digest()))
    forward = put(store, b"patch 1 -> 2")  # into the remaining build: friends on 1 still use it
    backward = put(store, b"patch 2 -> 1")  # into the removed build: nobody can want it
    old_sha, new_sha = v1.files[1].sha256, v2.files[1].sha256
    for source, target, obj in ((old_sha, new_sha, forward), (new_sha, old_sha, backward), (h("other"), old_sha, None)):
        db.call(lambda s: patch_queries.record_patch(s, source, target, "hdiff", obj, 10, 10, 0.1))
    db.call(lambda s: s.execute(update(Patch).values(created_at=datetime(2020, 1, 1))))  # all made long ago
    relied_on = put(store, b"an old chunk a new push found already stored")
    age(store, time.time() - 2 * DAY)
    store.touch([relied_on])  # what the seeder's missing-chunks query does for a push
    pushing = put(store, b"a chunk uploaded by a push that has not committed yet")

    db.call(lambda s: queries.remove_build(s, "g", "1"))
    assert db.call(lambda s: s.scalar(select(func.count()).select_from(Install))) == 0  # installs go with the build
    report = gc.collect(db, store)

    only_v1 = {ref.sha256 for ref in v1.files[1].chunks}
    assert set(report.removed) == only_v1 | {v1.digest(), backward}
    assert all(not store.has(name) for name in report.removed)
    assert all(store.has(ref.sha256) for f in v2.files for ref in f.chunks)  # shared chunks and the new pak
    assert store.has(v2.digest()) and store.has(forward) and store.has(pushing) and store.has(relied_on)
    assert report.objects_young == 2 and report.bytes_freed > 0
    rows = db.call(lambda s: [(r.source_sha, r.target_sha, r.object_sha) for r in s.scalars(select(Patch))])
    assert rows == [(old_sha, new_sha, forward)]  # the swept patch's row and the dead marker are gone
    assert report.patch_rows_removed == 2
    assert gc.collect(db, store).objects_removed == 0  # nothing left to do


def test_an_object_used_after_the_listing_is_not_removed(tmp_path: Path) -> None:
    store = DirectoryChunkStore(tmp_path / "store", durable=False)
    name = put(store, b"a chunk")
    age(store, OLD)
    store.touch([name])  # a push asked for it between the collector's listing and its sweep
    assert store.remove_if_unused(name, time.time() - DAY) is None
    assert store.has(name)


def test_a_touch_between_the_check_and_the_removal_keeps_the_object(tmp_path: Path, monkeypatch) -> None:
    """The race a check-then-unlink would lose: a commit touches the object after the collector looked at it."""
    store = DirectoryChunkStore(tmp_path / "store", durable=False)
    name = put(store, b"a chunk")
    age(store, OLD)
    real_rename = os.rename

    def touched_first(src, dst):
        assert store.touch([name]) == []  # the commit finds it present, just before the collector moves it
        real_rename(src, dst)

    monkeypatch.setattr(chunkstore.os, "rename", touched_first)
    assert store.remove_if_unused(name, time.time() - DAY) is None
    assert store.get(name) and not list(store.path(name).parent.glob(".tmp-*"))


def test_a_touch_after_the_object_left_its_name_reports_it_absent(tmp_path: Path, monkeypatch) -> None:
    store = DirectoryChunkStore(tmp_path / "store", durable=False)
    name = put(store, b"a chunk")
    size = store.sizes([name])[name]
    age(store, OLD)
    real_rename = os.rename
    seen = []

    def touched_after(src, dst):
        real_rename(src, dst)
        seen.append(store.touch([name]))  # a push asking now is told to upload it again

    monkeypatch.setattr(chunkstore.os, "rename", touched_after)
    assert store.remove_if_unused(name, time.time() - DAY) == size
    assert seen == [[name]] and not store.has(name)


# The routes


async def test_removing_the_latest_build_makes_the_one_before_latest(admin_session) -> None:
    ctx, client, admin = admin_session
    await client.post("/api/games", json={"slug": "g", "title": "G"}, headers=admin)
    for version, data in (("1", b"one" * 2000), ("2", b"two" * 2000)):
        manifest = Manifest("g", version, DEFAULT_PARAMS, (entry(ctx.store, "a.bin", data),))
        assert (await client.post("/api/games/g/builds", data=manifest.canonical_bytes(), headers=admin)).status == 201
    removed = await client.delete("/api/games/g/builds/2", headers=admin)
    assert removed.status == 200
    body = await removed.json()
    assert body["removed"] == "2" and ctx.jobs.known(body["gc_job"])
    game = await (await client.get("/api/games/g", headers=admin)).json()
    assert game["latest"] == "1" and [b["version"] for b in game["builds"]] == ["1"]
    again = await client.delete("/api/games/g/builds/2", headers=admin)
    assert again.status == 404 and (await again.json())["detail"] == {"missing": "version", "game": "g"}


async def test_gc_can_be_started_now(admin_session) -> None:
    ctx, client, admin = admin_session
    started = await client.post("/api/admin/gc", headers=admin)
    assert started.status == 202 and ctx.jobs.known((await started.json())["job"])
