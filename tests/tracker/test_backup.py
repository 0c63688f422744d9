"""Backups and restores of a real data directory: what they hold, what happens to a push or a collection during
one, and how an unfinished or damaged backup is refused. (tests/e2e/test_backups.py runs them against a server.)"""

from __future__ import annotations

import hashlib
import io
import json
import random
import stat
from tests import backends
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from click.testing import CliRunner
from sqlalchemy import text

from shared import compression
from shared.chunking import DEFAULT_PARAMS
from shared.manifest import Manifest
from tests.fresh_database import fresh_postgres
from tests.stored import store_file
from tracker import datalock
from tracker.auth import Passwords
from tracker.backups.backup import backup
from tracker.backups.directory import BackupCorrupt, BackupError, BackupIncomplete
from tracker.backups.restore import restore
from tracker.backups.unfinished_restore import MARKER as RESTORE_MARKER
from tracker.cli.mist_worker import main as worker_main
from tracker.config import TrackerContext
from tracker.datalock import DataInUse
from tracker.db import dump as dump_mod, patches as patch_queries, queries
from tracker.db.engine import MIGRATIONS, open_engine
from tracker.errors import TrackerError
from tracker.jobs import gc
from tracker.jobs.queue import open_jobs

PATCH_CONTENT = b"a patch from g 1 to g 2"
PATCH = hashlib.sha256(PATCH_CONTENT).hexdigest()


def sqlite(data: Path) -> str:
    return f"sqlite:///{data / 'tracker.db'}"


def open_server(data: Path, url: str = "") -> TrackerContext:
    """A tracker's data directory as the server leaves it: keys, database, store (on SQLite unless told)."""
    return TrackerContext.open(backends.settings(data, database_url=url or sqlite(data)))


def commit(ctx: TrackerContext, manifest: Manifest) -> None:
    data = manifest.canonical_bytes()
    ctx.store.put(manifest.digest(), compression.compress(data))
    ctx.db.call(lambda s: queries.add_build(s, manifest.game, manifest.version, manifest.digest(), data,
                                            ctx.signer.sign(data), manifest.total_size, len(manifest.files),
                                            len(manifest.chunk_sizes()), 0))


def build(ctx: TrackerContext, game: str, version: str, seed: int, shared: bytes = b"") -> Manifest:
    rng = random.Random(seed)
    files = [store_file(ctx.store, "own.bin", rng.randbytes(90_000))]
    if shared:
        files.append(store_file(ctx.store, "shared.bin", shared))
    manifest = Manifest(game, version, DEFAULT_PARAMS, tuple(files))
    commit(ctx, manifest)
    return manifest


def populate(ctx: TrackerContext) -> dict[str, Manifest]:
    """Two games (one private, granted), three builds sharing chunks, a patch between them, a user."""
    ctx.db.call(lambda s: queries.add_user(s, "alice", Passwords("cheapest").hash("alice-password"), False))
    ctx.db.call(lambda s: queries.add_game(s, "g", "G"))
    ctx.db.call(lambda s: queries.add_game(s, "secret", "Secret", True))
    ctx.db.call(lambda s: queries.set_grant(s, "alice", "secret", True))
    common = random.Random(1).randbytes(150_000)
    builds = {"g 1": build(ctx, "g", "1", 2, common), "g 2": build(ctx, "g", "2", 3, common),
              "secret 1": build(ctx, "secret", "1", 4)}
    patch = compression.compress(PATCH_CONTENT)
    ctx.store.put(PATCH, patch)
    source, target = builds["g 1"].files[0].sha256, builds["g 2"].files[0].sha256
    ctx.db.call(lambda s: patch_queries.record_patch(s, source, target, "hdiff", PATCH, 23, len(patch), 0.1))
    ctx.db.call(lambda s: patch_queries.record_install(s, "alice", "g", builds["g 1"].digest()))
    return builds


def dumped(url: str) -> list[bytes]:
    """Every row of a database, as the dump writes them (the header names the dialect, so it is left out)."""
    out = io.BytesIO()
    dump_mod.dump(url, out, lambda table, row: None)
    return out.getvalue().splitlines()[1:]


def objects(ctx_or_root: TrackerContext | Path) -> set[str]:
    root = ctx_or_root.store.root if isinstance(ctx_or_root, TrackerContext) else ctx_or_root
    return {p.name for p in root.rglob("*") if p.is_file() and len(p.name) == 64 and "quarantine" not in p.parts}


def needed(builds: dict[str, Manifest]) -> set[str]:
    return {m.digest() for m in builds.values()} | {h for m in builds.values() for h in m.chunk_sizes()}


@pytest.fixture
def server(tmp_path: Path) -> tuple[TrackerContext, dict[str, Manifest]]:
    ctx = open_server(tmp_path / "data")
    return ctx, populate(ctx)


def test_a_restore_holds_the_same_rows_objects_and_keys(server, tmp_path: Path) -> None:
    ctx, builds = server
    report = backup(ctx.settings.data, tmp_path / "backup", sqlite(ctx.settings.data))
    assert (report.games, report.builds, report.snapshots) == (2, 3, 1)
    assert report.objects == len(needed(builds)) + 1 == report.objects_copied  # and the patch
    assert stat.S_IMODE((tmp_path / "backup").stat().st_mode) == 0o700
    for secret in (tmp_path / "backup").glob("runs/*/files/*"):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert sorted(report.files) == ["jwt.secret", "signing.key"]

    restored = restore(tmp_path / "backup", tmp_path / "new", sqlite(tmp_path / "new"))
    assert restored.objects_copied == report.objects and restored.revision_to == dump_mod.head_revision()
    assert dumped(sqlite(tmp_path / "new")) == dumped(sqlite(ctx.settings.data))
    assert objects(tmp_path / "new" / "store") == objects(ctx)
    for name in ("signing.key", "jwt.secret"):
        assert (tmp_path / "new" / name).read_bytes() == (ctx.settings.data / name).read_bytes()
        assert stat.S_IMODE((tmp_path / "new" / name).stat().st_mode) == 0o600
    assert not (tmp_path / "new" / RESTORE_MARKER).exists()
    again = open_server(tmp_path / "new")
    assert again.signer.public_key == ctx.signer.public_key and again.jwt_secret == ctx.jwt_secret
    alice = again.db.call(lambda s: queries.get_user(s, "alice"))
    assert alice is not None and Passwords("cheapest").check(alice.password_hash, "alice-password")


def test_a_build_committed_after_the_snapshot_is_not_in_the_backup(server, tmp_path: Path) -> None:
    ctx, builds = server
    late: list[Manifest] = []
    report = backup(ctx.settings.data, tmp_path / "backup", sqlite(ctx.settings.data),
                    after_snapshot=lambda: late.append(build(ctx, "g", "3", 9)))
    assert report.builds == 3
    assert not (objects(tmp_path / "backup" / "store") & (needed({"late": late[0]}) - needed(builds)))
    restore(tmp_path / "backup", tmp_path / "new", sqlite(tmp_path / "new"))
    versions = open_server(tmp_path / "new").db.call(lambda s: [b.version for b in queries.get_game(
        s, "g", queries.Viewer("", True)).builds])
    assert sorted(versions) == ["1", "2"]


def test_a_build_removed_and_collected_during_the_backup_leaves_it_whole(server, tmp_path: Path) -> None:
    ctx, builds = server

    snapshots: list[int] = []

    def remove_and_collect() -> None:
        snapshots.append(1)
        if len(snapshots) > 1:
            return  # the backup's second snapshot, taken once it found objects gone
        ctx.db.call(lambda s: queries.remove_build(s, "g", "1"))
        removed = gc.collect(ctx.db, ctx.store, grace=0).removed
        assert builds["g 1"].digest() in removed  # the snapshot names objects that are gone now

    report = backup(ctx.settings.data, tmp_path / "backup", sqlite(ctx.settings.data), after_snapshot=remove_and_collect)
    assert report.snapshots == 2 and report.builds == 2 and not report.patches_missing
    restore(tmp_path / "backup", tmp_path / "new", sqlite(tmp_path / "new"))
    assert dumped(sqlite(tmp_path / "new")) == dumped(sqlite(ctx.settings.data))
    assert objects(tmp_path / "new" / "store") == objects(ctx)  # the removed build's objects are not carried along


def test_a_second_backup_copies_only_what_is_new_and_drops_what_is_gone(server, tmp_path: Path) -> None:
    ctx, builds = server
    first = backup(ctx.settings.data, tmp_path / "backup", sqlite(ctx.settings.data))
    again = backup(ctx.settings.data, tmp_path / "backup", sqlite(ctx.settings.data))
    assert (again.objects_copied, again.bytes_copied, again.objects_pruned) == (0, 0, 0)
    assert again.objects == first.objects and again.object_bytes == first.object_bytes
    assert len(list((tmp_path / "backup" / "runs").iterdir())) == 1

    late = build(ctx, "g", "3", 9)
    ctx.db.call(lambda s: queries.remove_build(s, "secret", "1"))
    third = backup(ctx.settings.data, tmp_path / "backup", sqlite(ctx.settings.data))
    assert third.objects_copied == len(needed({"3": late}) - needed(builds))
    assert third.objects_pruned == len(needed({"s": builds["secret 1"]}))
    kept = {k: m for k, m in builds.items() if k != "secret 1"}
    assert objects(tmp_path / "backup" / "store") == needed({**kept, "g 3": late}) | {PATCH}


def test_an_interrupted_backup_is_refused_and_the_one_before_it_still_restores(server, tmp_path: Path) -> None:
    ctx, _ = server

    def interrupt(name: str) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        backup(ctx.settings.data, tmp_path / "cut", sqlite(ctx.settings.data), on_object=interrupt)
    with pytest.raises(BackupIncomplete, match=r"did not finish .* Run `mist-admin backup .*cut` again"):
        restore(tmp_path / "cut", tmp_path / "new", sqlite(tmp_path / "new"))
    assert not (tmp_path / "new").exists()  # refused before writing anything

    first = backup(ctx.settings.data, tmp_path / "backup", sqlite(ctx.settings.data))
    build(ctx, "g", "3", 9)
    with pytest.raises(KeyboardInterrupt):
        backup(ctx.settings.data, tmp_path / "backup", sqlite(ctx.settings.data), on_object=interrupt)
    restored = restore(tmp_path / "backup", tmp_path / "new", sqlite(tmp_path / "new"))
    assert restored.builds == first.builds == 3


def test_a_damaged_object_stops_the_restore_and_the_server_will_not_start_on_half_of_one(server, tmp_path: Path) -> None:
    ctx, builds = server
    backup(ctx.settings.data, tmp_path / "backup", sqlite(ctx.settings.data))
    chunk = next(iter(builds["g 2"].files[0].chunks)).sha256
    path = tmp_path / "backup" / "store" / chunk[:2] / chunk[2:4] / chunk
    damaged = bytearray(path.read_bytes())
    damaged[len(damaged) // 2] ^= 0x01
    path.write_bytes(bytes(damaged))
    with pytest.raises(BackupCorrupt, match=r"1 of the backup's objects are damaged .*Restore another copy"):
        restore(tmp_path / "backup", tmp_path / "new", sqlite(tmp_path / "new"))
    with pytest.raises(TrackerError, match="a restore into .* did not finish"):
        open_server(tmp_path / "new")
    worker = CliRunner().invoke(worker_main, ["--data", str(tmp_path / "new")])
    assert worker.exit_code == 1 and "did not finish" in worker.output and "before you start the worker" in worker.output
    swept = open_jobs(backends.settings(tmp_path / "new")).collect_garbage.call_local()  # a worker already running when it began
    assert "did not finish" in swept["error"] and swept["objects_removed"] == 0

    path.unlink()  # as if a good copy came back from off-site and a new backup repaired it:
    backup(ctx.settings.data, tmp_path / "backup", sqlite(ctx.settings.data))
    restore(tmp_path / "backup", tmp_path / "new", sqlite(tmp_path / "new"))  # carries on without --force
    assert dumped(sqlite(tmp_path / "new")) == dumped(sqlite(ctx.settings.data))


def test_a_damaged_dump_or_manifest_is_refused_before_anything_is_written(server, tmp_path: Path) -> None:
    ctx, _ = server
    backup(ctx.settings.data, tmp_path / "backup", sqlite(ctx.settings.data))
    dump_file = next((tmp_path / "backup").glob("runs/*/database.jsonl"))
    dump_file.write_bytes(dump_file.read_bytes().replace(b"alice", b"alicf"))
    with pytest.raises(BackupCorrupt, match="does not match the checksum"):
        restore(tmp_path / "backup", tmp_path / "new", sqlite(tmp_path / "new"))
    (tmp_path / "backup" / "backup.json").write_text("{not json")
    with pytest.raises(BackupCorrupt, match="backup.json is damaged"):
        restore(tmp_path / "backup", tmp_path / "new", sqlite(tmp_path / "new"))
    assert not (tmp_path / "new").exists()


def test_a_restore_refuses_a_data_directory_in_use_unless_forced(server, tmp_path: Path) -> None:
    ctx, _ = server
    backup(ctx.settings.data, tmp_path / "backup", sqlite(ctx.settings.data))
    other = open_server(tmp_path / "other")
    other.db.call(lambda s: queries.add_game(s, "other", "Other"))
    with pytest.raises(BackupError, match=r"is not empty .*pass --force"):
        restore(tmp_path / "backup", tmp_path / "other", sqlite(tmp_path / "other"))
    restore(tmp_path / "backup", tmp_path / "other", sqlite(tmp_path / "other"), force=True)
    assert dumped(sqlite(tmp_path / "other")) == dumped(sqlite(ctx.settings.data))


def test_a_missing_chunk_on_the_server_fails_the_backup_and_names_the_build(server, tmp_path: Path) -> None:
    ctx, builds = server
    backup(ctx.settings.data, tmp_path / "backup", sqlite(ctx.settings.data))
    ctx.store.quarantine(builds["secret 1"].files[0].chunks[0].sha256)  # as the scrub does with a damaged one
    with pytest.raises(BackupError, match=r"lacks 1 objects its builds need: secret 1 \(1 objects\)\. Run `mistpipe scrub`"):
        backup(ctx.settings.data, tmp_path / "backup", sqlite(ctx.settings.data))
    restore(tmp_path / "backup", tmp_path / "new", sqlite(tmp_path / "new"))  # the previous backup is whole


def test_a_missing_patch_object_is_recorded_not_fatal(server, tmp_path: Path) -> None:
    ctx, builds = server
    ctx.store.quarantine(PATCH)
    report = backup(ctx.settings.data, tmp_path / "backup", sqlite(ctx.settings.data))
    assert report.patches_missing == [PATCH] and report.snapshots == 3
    restored = restore(tmp_path / "backup", tmp_path / "new", sqlite(tmp_path / "new"))
    assert restored.patches_missing == 1 and objects(tmp_path / "new" / "store") == needed(builds)


def test_the_backup_directory_must_be_apart_from_the_data(server, tmp_path: Path) -> None:
    ctx, _ = server
    with pytest.raises(BackupError, match="must not contain each other"):
        backup(ctx.settings.data, ctx.settings.data / "backup", sqlite(ctx.settings.data))
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"meow")
    with pytest.raises(BackupError, match="holds no Mist backup"):
        backup(ctx.settings.data, tmp_path / "photos", sqlite(ctx.settings.data))


def _upgrade(url: str, revision: str) -> None:
    engine = open_engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    engine.dispose()


def test_a_backup_from_an_older_schema_is_migrated_to_the_newest(tmp_path: Path) -> None:
    data = tmp_path / "old"
    (data / "store").mkdir(parents=True)
    _upgrade(sqlite(data), "0004")  # before peer reports
    with open_engine(sqlite(data)).begin() as connection:
        connection.execute(text("INSERT INTO games (slug, title, created_at, private) VALUES ('old', 'Old', '2026-01-01', 0)"))
    report = backup(data, tmp_path / "backup", sqlite(data))
    assert report.revision == "0004"
    restored = restore(tmp_path / "backup", tmp_path / "new", sqlite(tmp_path / "new"))
    assert (restored.revision_from, restored.revision_to) == ("0004", dump_mod.head_revision())
    rows = dumped(sqlite(tmp_path / "new"))
    assert any(b'"old","Old"' in row for row in rows) and any(b'"table":"peer_reports"' in row for row in rows)


def test_a_dump_from_a_newer_mist_is_refused(tmp_path: Path) -> None:
    lines = [json.dumps({"format": dump_mod.FORMAT, "version": 1, "revision": "9999", "dialect": "sqlite"}).encode()]
    with pytest.raises(dump_mod.DumpError, match=r"revision '9999', which this Mist does not know"):
        dump_mod.load(sqlite(tmp_path), iter(lines))


def test_a_cut_short_dump_is_refused(server, tmp_path: Path) -> None:
    ctx, _ = server
    out = io.BytesIO()
    dump_mod.dump(sqlite(ctx.settings.data), out, lambda table, row: None)
    with pytest.raises(dump_mod.DumpError, match="cut short"):
        dump_mod.load(sqlite(tmp_path), iter(out.getvalue().splitlines()[:-1]))


def test_sqlite_to_postgresql_and_back(server, tmp_path: Path) -> None:
    ctx, _ = server
    backup(ctx.settings.data, tmp_path / "from-sqlite", sqlite(ctx.settings.data))
    with fresh_postgres() as postgres:
        restore(tmp_path / "from-sqlite", tmp_path / "pg", postgres)
        assert dumped(postgres) == dumped(sqlite(ctx.settings.data))
        on_postgres = open_server(tmp_path / "pg", postgres)
        on_postgres.db.call(lambda s: queries.add_user(s, "bob", "x", False))  # ids go on after the restored ones
        backup(tmp_path / "pg", tmp_path / "from-pg", postgres)
    restore(tmp_path / "from-pg", tmp_path / "back", sqlite(tmp_path / "back"))
    names = [u["name"] for u in open_server(tmp_path / "back").db.call(queries.list_users)]
    assert sorted(names) == ["alice", "bob"]


def test_a_dump_reads_one_snapshot_while_the_server_writes(server, tmp_path: Path) -> None:
    ctx, _ = server
    late: list[str] = []

    def write_meanwhile(table: str, row: object) -> None:
        if not late:  # at the first row read (games): a new user and game, committed at once
            late.append("x")
            ctx.db.call(lambda s: queries.add_user(s, "late-user", "x", False))
            ctx.db.call(lambda s: queries.add_game(s, "late-game", "Late"))

    out = io.BytesIO()
    summary = dump_mod.dump(sqlite(ctx.settings.data), out, write_meanwhile)
    assert late and summary.rows["users"] == 1 and summary.rows["games"] == 2
    assert b"late-" not in out.getvalue()
    assert b"late-user" in b"".join(dumped(sqlite(ctx.settings.data)))  # it was committed: a new dump has it


def test_a_postgresql_dump_reads_one_snapshot_too(tmp_path: Path) -> None:
    with fresh_postgres() as postgres:
        ctx = open_server(tmp_path / "pg", postgres)
        populate(ctx)
        late: list[str] = []

        def write_meanwhile(table: str, row: object) -> None:
            if not late:
                late.append("x")
                ctx.db.call(lambda s: queries.add_user(s, "late-user", "x", False))

        out = io.BytesIO()
        summary = dump_mod.dump(postgres, out, write_meanwhile)
        ctx.db.engine.dispose()
    assert late and summary.rows["users"] == 1 and b"late-user" not in out.getvalue()


def test_a_backup_names_a_database_that_is_not_there(tmp_path: Path) -> None:
    (tmp_path / "data" / "store").mkdir(parents=True)
    with pytest.raises(dump_mod.DumpError, match="there is no database at .*set MIST_DATABASE_URL as for the server"):
        backup(tmp_path / "data", tmp_path / "backup", sqlite(tmp_path / "data"))
    assert not (tmp_path / "data" / "tracker.db").exists()  # and none was made


def test_a_restore_waits_for_no_tracker_to_hold_the_directory(server, tmp_path: Path) -> None:
    ctx, _ = server
    backup(ctx.settings.data, tmp_path / "backup", sqlite(ctx.settings.data))
    with datalock.held(tmp_path / "new", "start the tracker"):  # a tracker serving it
        with pytest.raises(DataInUse, match=r"is in use by pid \d+ \(start the tracker\).* then restore again"):
            restore(tmp_path / "backup", tmp_path / "new", sqlite(tmp_path / "new"), force=True)
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == [datalock.LOCK_FILE]  # nothing was replaced
    restored = restore(tmp_path / "backup", tmp_path / "new", sqlite(tmp_path / "new"))  # the lock file is not "content"
    assert restored.builds == 3
