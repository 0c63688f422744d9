"""The plan route on a real tracker app and store: patches chosen, made once for friends asking at once."""

from __future__ import annotations

import asyncio
import itertools
import random
import threading

import pytest
from sqlalchemy import text

from shared.chunking import DEFAULT_PARAMS
from shared.chunkstore import DirectoryChunkStore
from shared.manifest import Manifest
from tests.stored import store_file
from tracker.jobs.queue import make_build_patches
from tracker.routes import updates

OLD = random.Random(1).randbytes(600_000)
NEW = bytes(b ^ 1 if i % 5000 == 0 else b for i, b in enumerate(OLD))  # changed all through: no chunk survives


def stored_build(store: DirectoryChunkStore, version: str, data: bytes) -> Manifest:
    return Manifest("jump", version, DEFAULT_PARAMS, (store_file(store, "engine.so", data),))


def queries_made(monkeypatch, *names: str) -> list[str]:
    """The names of these patch queries, each time one is made from now on (the real queries, counted)."""
    made: list[str] = []
    for name in names:
        real = getattr(updates.patch_queries, name)

        def counting(*args, _real=real, _name=name, **kwargs):
            made.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(updates.patch_queries, name, counting)
    return made


def manifests_read(monkeypatch) -> list[str]:
    """The digests of the manifests read from the database from now on (the real query, counted)."""
    read: list[str] = []
    real = updates.patch_queries.manifest_data

    def counting(session, digest):
        read.append(digest)
        return real(session, digest)

    monkeypatch.setattr(updates.patch_queries, "manifest_data", counting)
    return read


@pytest.fixture
async def tracker(admin_session):
    ctx, client, admin = admin_session
    await client.post("/api/games", json={"slug": "jump", "title": "Jump"}, headers=admin)
    builds = [stored_build(ctx.store, "1", OLD), stored_build(ctx.store, "2", NEW)]
    for build in builds:
        assert (await client.post("/api/games/jump/builds", data=build.canonical_bytes(), headers=admin)).status == 201
    return client, admin, builds


async def test_friends_asking_for_the_same_new_jump_at_once_share_one_quick_patch(tracker, monkeypatch) -> None:
    client, admin, (v1, _) = tracker
    made: list[int] = []
    real = updates.make_all

    def counting(store, pairs, *rest):  # the real maker, counted
        made.append(len(pairs))
        return real(store, pairs, *rest)

    monkeypatch.setattr(updates, "make_all", counting)
    body = {"have": [v1.digest()], "write": ["engine.so"]}
    answers = await asyncio.gather(*(client.post("/api/games/jump/builds/2/plan", json=body, headers=admin) for _ in range(4)))
    plans = [await a.json() for a in answers]
    assert sum(made) == 1, f"the patch was made {sum(made)} times"
    for plan in plans:
        [choice] = plan["files"]
        assert choice["source"] == "patch" and choice["bytes"] * 10 < choice["chunk_bytes"], choice
        assert choice["patch"]["algorithm"] == "zstd" and [c["path"] for c in plan["coming"]] == ["engine.so"]


async def test_a_plan_whose_look_at_made_patches_went_stale_does_not_make_the_patch_again(tracker, monkeypatch) -> None:
    """The window the shared making leaves: a second friend's look at the patches made is taken before the first
    friend records its patch, and answers after the first let go of its reservation (a busy database). The
    second then finds nothing made and nothing being made; it must look again before making it twice."""
    client, admin, (v1, _) = tracker
    ctx = client.app[updates.CONTEXT]
    made: list[int] = []
    recorded, second_look = threading.Event(), threading.Event()
    looks = itertools.count()
    real_make, real_attempted, real_record = updates.make_all, updates.patch_queries.attempted, updates.patch_queries.record_patches

    def counting(store, pairs, *rest):
        made.append(len(pairs))
        return real_make(store, pairs, *rest)

    def attempted(session, targets):
        reserved_when_asked = bool(ctx.quick_patches)
        seen = real_attempted(session, targets)
        if next(looks) == 0:  # the first friend's look answers once the second friend's has been taken
            assert second_look.wait(30), "the second friend never looked"
        elif not reserved_when_asked:  # the second friend's, taken before any reservation: answers after the record
            second_look.set()
            assert recorded.wait(30), "the first friend never recorded its patch"
        return seen

    def record(session, rows):
        real_record(session, rows)
        recorded.set()

    monkeypatch.setattr(updates, "make_all", counting)
    monkeypatch.setattr(updates.patch_queries, "attempted", attempted)
    monkeypatch.setattr(updates.patch_queries, "record_patches", record)
    body = {"have": [v1.digest()], "write": ["engine.so"]}
    answers = await asyncio.gather(*(client.post("/api/games/jump/builds/2/plan", json=body, headers=admin) for _ in range(2)))
    assert [a.status for a in answers] == [200, 200]
    assert sum(made) == 1, f"the patch was made {sum(made)} times"


async def test_a_jump_no_patch_was_made_for_follows_the_chain_of_the_pushes_patches(admin_session) -> None:
    """1 -> 2 and 2 -> 3 were made at their pushes; a friend on 1 gets 3 through 2, cheaper than any patch
    made while waiting, and a client that applies one patch per file gets the direct one."""
    ctx, client, admin = admin_session
    await client.post("/api/games", json={"slug": "jump", "title": "Jump"}, headers=admin)
    third = bytes(b ^ 2 if i % 5000 == 7 else b for i, b in enumerate(NEW))
    builds = [stored_build(ctx.store, str(n), data) for n, data in enumerate((OLD, NEW, third), start=1)]
    for build in builds:
        assert (await client.post("/api/games/jump/builds", data=build.canonical_bytes(), headers=admin)).status == 201
    rows: list[tuple] = []
    pairs = [(builds[0].files[0], builds[1].files[0]), (builds[1].files[0], builds[2].files[0])]
    made, failed = updates.make_all(ctx.store, pairs, "hdiff", lambda *row: rows.append(row), set())
    assert failed == 0 and all(m.useful for m in made)
    ctx.db.call(lambda s: updates.patch_queries.record_patches(s, rows))

    # A cheaper chain through a content no build of this game has (another game's file, say) is never offered:
    # the client could not fetch it under a ticket for this game, and it is not this game's to show.
    stranger = "5" * 64
    rows = [(builds[0].files[0].sha256, stranger, "hdiff", "6" * 64, 10, 1, 0.0),
            (stranger, builds[2].files[0].sha256, "hdiff", "7" * 64, 10, 1, 0.0)]
    ctx.db.call(lambda s: updates.patch_queries.record_patches(s, rows))

    body = {"have": [builds[0].digest()], "write": ["engine.so"], "steps": 4}
    chained = await (await client.post("/api/games/jump/builds/3/plan", json=body, headers=admin)).json()
    [choice] = chained["files"]
    assert [(step["from"], step["to"]) for step in choice["chain"]] == [(builds[0].files[0].sha256, builds[1].files[0].sha256),
                                                                        (builds[1].files[0].sha256, builds[2].files[0].sha256)]
    assert [step.get("build") for step in choice["chain"]] == ["2", None]  # fetched under a ticket for build 2
    assert choice["bytes"] == sum(m.stored_size for m in made)
    direct = await (await client.post("/api/games/jump/builds/3/plan", json={**body, "steps": 1}, headers=admin)).json()
    assert "chain" not in direct["files"][0] and direct["files"][0]["patch"]["algorithm"] == "zstd"
    assert direct["files"][0]["bytes"] > choice["bytes"], "the quick patch made while waiting should cost more"
    for steps in (0, 5, "4", True):
        refused = await client.post("/api/games/jump/builds/3/plan", json={**body, "steps": steps}, headers=admin)
        assert refused.status == 400 and "steps" in (await refused.json())["error"]


async def test_friends_on_the_same_old_content_are_offered_one_stored_patch_object(admin_session) -> None:
    """Issue 19.3: a patch is keyed by the two file contents (table `patches`, unique on source, target and
    algorithm; the object named by its own SHA-256), never by a friend or a version pair. Two friends on build 1
    and a third on a hotfix build holding the same engine all get the same object, and nothing new is made."""
    ctx, client, admin = admin_session
    await client.post("/api/games", json={"slug": "jump", "title": "Jump"}, headers=admin)
    old, new = stored_build(ctx.store, "1", OLD), stored_build(ctx.store, "2", NEW)
    hotfix = Manifest("jump", "1.1", DEFAULT_PARAMS, old.files + (store_file(ctx.store, "hotfix.txt", b"patched"),))
    for build in (old, hotfix, new):
        assert (await client.post("/api/games/jump/builds", data=build.canonical_bytes(), headers=admin)).status == 201
    rows: list[tuple] = []
    [made], failed = updates.make_all(ctx.store, [(old.files[0], new.files[0])], "hdiff", lambda *row: rows.append(row), set())
    assert failed == 0 and made.useful
    ctx.db.call(lambda s: updates.patch_queries.record_patches(s, rows))

    offers = []
    for name, held in (("ann", old), ("bob", old), ("cyd", hotfix)):
        await client.post("/api/users", json={"name": name, "password": f"{name}-password-1"}, headers=admin)
        login = await (await client.post("/api/login", json={"user": name, "password": f"{name}-password-1"})).json()
        body = {"have": [held.digest()], "write": ["engine.so"], "steps": 4}
        answer = await client.post("/api/games/jump/builds/2/plan", json=body,
                                   headers={"Authorization": f"Bearer {login['access_token']}"})
        [choice] = (await answer.json())["files"]
        offers.append((choice["source"], choice["patch"]["object"], choice["bytes"]))
    assert offers == [("patch", made.object_sha, made.stored_size)] * 3
    stored = ctx.db.call(lambda s: s.execute(
        text("SELECT algorithm, object_sha FROM patches WHERE target_sha = :t"), {"t": new.files[0].sha256}).all())
    assert [tuple(r) for r in stored] == [("hdiff", made.object_sha)], "one object for all three, none made again"


async def test_a_patch_bundle_goes_only_to_clients_that_say_they_apply_one(admin_session) -> None:
    """The push's job makes per-file patches and one bundle of the small files; a client whose plan request does not
    say `"bundles": true` (every client before issue 19.3) is offered only the per-file patches."""
    ctx, client, admin = admin_session
    await client.post("/api/games", json={"slug": "small", "title": "Small"}, headers=admin)
    rng = random.Random(3)
    olds = [rng.randbytes(20_000) for _ in range(6)]
    news = [data[:5000] + b"changed" + data[5000:] for data in olds]
    builds = [Manifest("small", str(n), DEFAULT_PARAMS, tuple(store_file(ctx.store, f"s{i}.bin", d) for i, d in enumerate(files)))
              for n, files in ((1, olds), (2, news))]
    for build in builds:
        assert (await client.post("/api/games/small/builds", data=build.canonical_bytes(), headers=admin)).status == 201
    report = make_build_patches(ctx.db, ctx.store, "small", "2", [builds[0].digest()])
    assert (report["made"], report["bundles"]) == (6, 1), report
    write = [f.path for f in builds[1].files]

    body = {"have": [builds[0].digest()], "write": write, "steps": 4}
    older = await (await client.post("/api/games/small/builds/2/plan", json=body, headers=admin)).json()
    assert {f["source"] for f in older["files"]} == {"patch"} and "bundles" not in older
    newer = await (await client.post("/api/games/small/builds/2/plan", json={**body, "bundles": True}, headers=admin)).json()
    assert {f["source"] for f in newer["files"]} == {"bundle"}
    [offer] = newer["bundles"]
    assert offer["stored_size"] == report["bundle_bytes"] < older["bytes"]["patch"] == report["patch_bytes"]
    assert sorted(f["to"] for f in offer["files"]) == sorted(f.sha256 for f in builds[1].files)
    refused = await client.post("/api/games/small/builds/2/plan", json={**body, "bundles": 1}, headers=admin)
    assert refused.status == 400 and "bundles" in (await refused.json())["error"]


async def test_a_plan_reads_the_builds_manifests_only_when_their_indexes_are_not_kept(tracker, monkeypatch) -> None:
    """The route keeps each build as its compact index: a later plan reads no manifest from the database, and
    with a budget so small that only the newest index is kept, the same plan comes out of re-read manifests."""
    client, admin, (v1, v2) = tracker
    read = manifests_read(monkeypatch)
    body = {"have": [v1.digest()], "write": ["engine.so"]}
    first = await (await client.post("/api/games/jump/builds/2/plan", json=body, headers=admin)).json()
    read.clear()
    again = await (await client.post("/api/games/jump/builds/2/plan", json=body, headers=admin)).json()
    assert read == [] and again["files"] == first["files"]

    monkeypatch.setattr(updates, "INDEXES", updates.BuildIndexes(kept_bytes=1))
    squeezed = await (await client.post("/api/games/jump/builds/2/plan", json=body, headers=admin)).json()
    assert read == [v2.digest(), v1.digest()] and squeezed["files"] == first["files"]
    again = await (await client.post("/api/games/jump/builds/2/plan", json=body, headers=admin)).json()
    assert read == [v2.digest(), v1.digest()] * 2 and again["files"] == first["files"]


async def test_a_build_pushed_after_one_in_use_is_indexed_before_its_first_plan(admin_session, monkeypatch) -> None:
    """The announcer makes the new build's index from the previous one's (kept: a friend planned against it), so
    the first plan into it reads no manifest; with the previous one not kept, the first plan makes it."""
    from tracker.announce import ANNOUNCER

    ctx, client, admin = admin_session
    monkeypatch.setattr(updates, "INDEXES", updates.BuildIndexes())
    announcer = client.app[ANNOUNCER]
    announcer.wait = 0  # no worker makes patches here
    await client.post("/api/games", json={"slug": "jump", "title": "Jump"}, headers=admin)
    v1, v2, v3 = (stored_build(ctx.store, str(n), data) for n, data in ((1, OLD), (2, NEW), (3, OLD[::-1])))
    assert (await client.post("/api/games/jump/builds", data=v1.canonical_bytes(), headers=admin)).status == 201
    await announcer.drained()
    assert updates.INDEXES.kept() == []  # nothing planned against build 1 yet: nothing to start from
    body = {"have": [], "write": ["engine.so"]}
    assert (await client.post("/api/games/jump/builds/1/plan", json=body, headers=admin)).status == 200
    read = manifests_read(monkeypatch)
    assert (await client.post("/api/games/jump/builds", data=v2.canonical_bytes(), headers=admin)).status == 201
    await announcer.drained()
    assert updates.INDEXES.kept() == [v1.digest(), v2.digest()] and read == [v2.digest()]  # made by the announcer
    read.clear()
    plan = await (await client.post("/api/games/jump/builds/2/plan", json={**body, "have": [v1.digest()]}, headers=admin)).json()
    assert read == [] and [f["path"] for f in plan["files"]] == ["engine.so"]
    assert list(updates.INDEXES.peek(v2.digest()).files()) == list(v2.files)
    monkeypatch.setattr(updates, "INDEXES", updates.BuildIndexes())  # the previous build not kept
    assert (await client.post("/api/games/jump/builds", data=v3.canonical_bytes(), headers=admin)).status == 201
    await announcer.drained()
    assert updates.INDEXES.kept() == []


async def test_a_plan_from_an_index_made_ahead_with_moved_positions_is_the_plan_a_scanned_one_gives(admin_session,
                                                                                                     monkeypatch) -> None:
    """One file of a hundred changes: the announcer's index of the new build keeps the old chunks' positions and puts
    the new ones past them (shared/digest_set.py), and the plan route answers from it exactly as from a scan."""
    from tracker.announce import ANNOUNCER

    ctx, client, admin = admin_session
    monkeypatch.setattr(updates, "INDEXES", updates.BuildIndexes())
    announcer = client.app[ANNOUNCER]
    announcer.wait = 0  # no worker makes patches here
    await client.post("/api/games", json={"slug": "many", "title": "Many"}, headers=admin)
    rng = random.Random(7)
    contents = [rng.randbytes(1000) for _ in range(100)]
    olds = Manifest("many", "1", DEFAULT_PARAMS, tuple(store_file(ctx.store, f"f{i:02d}.bin", d) for i, d in enumerate(contents)))
    contents[17] = rng.randbytes(1000)
    news = Manifest("many", "2", DEFAULT_PARAMS, tuple(store_file(ctx.store, f"f{i:02d}.bin", d) for i, d in enumerate(contents)))
    assert (await client.post("/api/games/many/builds", data=olds.canonical_bytes(), headers=admin)).status == 201
    body = {"have": [olds.digest()], "write": ["f17.bin", "f03.bin"]}
    assert (await client.post("/api/games/many/builds/1/plan", json={**body, "have": []}, headers=admin)).status == 200
    assert (await client.post("/api/games/many/builds", data=news.canonical_bytes(), headers=admin)).status == 201
    await announcer.drained()
    ahead = updates.INDEXES.peek(news.digest())
    assert ahead is not None and ahead.chunks.moved > 0  # made from build 1's, positions kept
    planned = await (await client.post("/api/games/many/builds/2/plan", json=body, headers=admin)).json()
    monkeypatch.setattr(updates, "INDEXES", updates.BuildIndexes())  # scanned afresh
    scanned = await (await client.post("/api/games/many/builds/2/plan", json=body, headers=admin)).json()
    assert updates.INDEXES.peek(news.digest()).chunks.moved == 0
    assert planned == scanned and {f["path"] for f in planned["files"]} == {"f17.bin", "f03.bin"}


async def test_a_client_that_holds_nothing_gets_chunks_without_the_patch_lookups_and_one_naming_a_content_gets_its_patch(
    tracker, monkeypatch
) -> None:
    client, admin, (v1, v2) = tracker
    with_patch = await client.post("/api/games/jump/builds/2/plan", json={"have": [v1.digest()], "write": ["engine.so"]},
                                   headers=admin)
    assert (await with_patch.json())["files"][0]["source"] == "patch"  # a patch from 1 to 2 exists now
    looked = queries_made(monkeypatch, "chain_options", "bundle_options")
    fresh = await (await client.post("/api/games/jump/builds/2/plan", json={"have": [], "write": ["engine.so"], "bundles": True},
                                     headers=admin)).json()
    [choice] = fresh["files"]
    assert choice["source"] == "chunks" and 0 < choice["chunk_bytes"] == choice["file_bytes"] <= len(NEW) + 1024
    assert fresh["coming"] == [] and looked == []  # nothing held: no patch could start anywhere
    named = await (await client.post("/api/games/jump/builds/2/plan",
                                     json={"have": [], "write": ["engine.so"], "contents": [v1.files[0].sha256]},
                                     headers=admin)).json()
    assert named["files"][0]["source"] == "patch" and looked == ["chain_options"]  # a content named: its patch is found
