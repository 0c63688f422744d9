"""Rotating the tracker's signing key on a real data directory and database: hand-overs, re-signed builds,
crash recovery, the leaked-key case, and the lock that keeps it away from a running tracker."""

from __future__ import annotations

import json
import os
import stat
from tests import backends
from pathlib import Path

import pytest
from click.testing import CliRunner

from shared.errors import SignatureError
from shared.handover import Handover, follow
from shared.signing import Signer, fingerprint, verify
from tracker import datalock, keys
from tracker.app import make_app
from tracker.cli import mist_admin
from tracker.config import TrackerContext
from tracker.datalock import DataInUse
from tracker.db import queries
from tracker.db.engine import Database, NoDatabase, migrate, open_engine
from tracker.keys import KeyFilesError

pytestmark = pytest.mark.same_on_every_backend  # builds its trackers' databases as SQLite files in their data directories

NOW = 1_700_000_000
MANIFESTS = {"1.0": b'{"v":"1.0"}', "1.1": b'{"v":"1.1"}', "2.0": b'{"v":"2.0"}'}


def database(data: Path) -> Database:
    engine = open_engine(f"sqlite:///{data / 'tracker.db'}")
    migrate(engine)
    return Database(engine)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A tracker's data directory with three builds signed by its first key, as a tracker leaves it."""
    root = tmp_path / "data"
    signer = keys.load(root).signer
    db = database(root)
    db.call(lambda s: queries.add_game(s, "hollow", "Hollow"))
    for version, manifest in MANIFESTS.items():
        db.call(lambda s, v=version, m=manifest: queries.add_build(s, "hollow", v, v * 8, m, signer.sign(m), 1, 1, 1, 1))
    db.engine.dispose()
    return root


def current(data: Path) -> Signer:
    return Signer.load(keys.key_path(data))


def stored_signatures(data: Path) -> dict[str, tuple[bytes, str]]:
    db = database(data)
    try:
        return {v: db.call(lambda s, v=v: queries.get_build(s, "hollow", v, queries.Viewer("", True)))[1:] for v in MANIFESTS}
    finally:
        db.engine.dispose()


def test_a_rotation_hands_over_re_signs_every_build_and_keeps_the_old_key_private(data: Path) -> None:
    old = current(data)
    rotation = keys.rotate_stopped(data, NOW)
    new = current(data)
    assert (rotation.old, rotation.new, rotation.handed_over, rotation.builds_resigned) == (old.public_key, new.public_key, True, 3)
    assert new.public_key != old.public_key
    for version, (manifest, signature) in stored_signatures(data).items():
        assert manifest == MANIFESTS[version]  # the bytes stay; only the signature is new
        verify(new.public_key, manifest, signature)
        with pytest.raises(SignatureError):
            verify(old.public_key, manifest, signature)
    loaded = keys.load(data)
    assert loaded.signer.public_key == new.public_key
    assert follow(old.public_key, new.public_key, loaded.handovers) == list(loaded.handovers)
    assert loaded.handovers[0].issued_at == NOW
    archive = keys.archive_dir(data)
    assert stat.S_IMODE(archive.stat().st_mode) == 0o700
    assert stat.S_IMODE(rotation.retired_path.stat().st_mode) == 0o600
    assert Signer.load(rotation.retired_path).public_key == old.public_key
    assert not keys.pending_path(data).exists()


def test_a_second_rotation_chains_so_the_first_key_leads_to_the_third(data: Path) -> None:
    first = current(data)
    keys.rotate_stopped(data, NOW)
    keys.rotate_stopped(data, NOW)  # within the same second: the chain's times still move forward
    third = current(data)
    chain = keys.load(data).handovers
    assert len(chain) == 2 and chain[1].issued_at > chain[0].issued_at
    assert follow(first.public_key, third.public_key, chain) == list(chain)
    assert len(list(keys.archive_dir(data).glob("*.key"))) == 2


class Crash(Exception):
    pass


def test_a_rotation_killed_before_it_re_signed_the_builds_keeps_the_tracker_down_until_it_is_finished(data: Path) -> None:
    old = current(data)

    class DyingDatabase:
        def call(self, fn: object) -> None:
            raise Crash()

    with pytest.raises(Crash):
        keys.rotate(data, DyingDatabase(), NOW)  # type: ignore[arg-type]
    assert current(data).public_key == old.public_key
    with pytest.raises(KeyFilesError, match="did not finish; run `mist-admin rotate-key --data .*` again"):
        keys.load(data)
    planned = Signer.load(keys.pending_path(data)).public_key
    rotation = keys.rotate_stopped(data, NOW + 5)
    assert rotation.resumed and rotation.new == planned == current(data).public_key
    chain = keys.load(data).handovers
    assert [(h.old, h.new) for h in chain] == [(old.public_key, planned)]  # recorded once, not twice
    assert [p.name for p in keys.archive_dir(data).glob("handovers*")] == ["handovers.json"]  # and not started over
    for manifest, signature in stored_signatures(data).values():
        verify(planned, manifest, signature)


def test_a_rotation_killed_before_the_hand_over_was_written_finishes_it(data: Path, monkeypatch) -> None:
    old = current(data)

    def crash(*args: object) -> bool:
        raise Crash()

    monkeypatch.setattr(keys, "_record_handover", crash)
    with pytest.raises(Crash):
        keys.rotate_stopped(data, NOW)
    monkeypatch.undo()
    rotation = keys.rotate_stopped(data, NOW)
    assert rotation.resumed and rotation.handed_over
    assert follow(old.public_key, current(data).public_key, keys.load(data).handovers)


def test_a_leaked_key_signs_no_hand_over_and_the_old_chain_is_set_aside(data: Path) -> None:
    keys.rotate_stopped(data, NOW)
    second = current(data)
    rotation = keys.rotate_stopped(data, NOW + 10, leaked=True)
    assert not rotation.handed_over and rotation.builds_resigned == 3
    assert keys.load(data).handovers == ()
    kept = keys.archive_dir(data) / f"handovers-until-{fingerprint(second.public_key)}.json"
    assert len(json.loads(kept.read_text())) == 1
    for manifest, signature in stored_signatures(data).values():
        verify(current(data).public_key, manifest, signature)
    keys.rotate_stopped(data, NOW + 20)  # the next ordinary rotation starts a new chain from the new key
    assert [h.old for h in keys.load(data).handovers] == [rotation.new]


def test_a_leaked_rotation_finished_after_a_crash_still_signs_no_hand_over(data: Path) -> None:
    class DyingDatabase:
        def call(self, fn: object) -> None:
            raise Crash()

    with pytest.raises(Crash):
        keys.rotate(data, DyingDatabase(), NOW, leaked=True)  # type: ignore[arg-type]
    rotation = keys.rotate_stopped(data, NOW)  # finished without --leaked: the decision stands
    assert rotation.resumed and not rotation.handed_over
    assert keys.load(data).handovers == ()


def test_a_leaked_run_that_died_before_making_its_key_does_not_silence_the_next_rotation(data: Path) -> None:
    (data / "signing.key.next.leaked").touch()
    assert keys.rotate_stopped(data, NOW).handed_over


def test_a_key_file_replaced_by_hand_serves_no_chain_and_the_next_rotation_starts_over(data: Path) -> None:
    keys.rotate_stopped(data, NOW)
    stranger = Signer.generate()
    stranger.save(keys.key_path(data))
    assert keys.load(data).handovers == ()  # the chain leads to the previous key, not this one
    keys.rotate_stopped(data, NOW + 10)
    chain = keys.load(data).handovers
    assert [h.old for h in chain] == [stranger.public_key]


@pytest.mark.parametrize("damage", ["not json", "{}", "tampered"])
def test_a_damaged_chain_stops_the_tracker_and_says_what_to_do(data: Path, damage: str) -> None:
    keys.rotate_stopped(data, NOW)
    path = keys.archive_dir(data) / keys.CHAIN_FILE
    if damage == "tampered":
        (h,) = json.loads(path.read_text())
        h["issued_at"] += 1
        path.write_text(json.dumps([h]))
    else:
        path.write_text(damage)
    with pytest.raises(KeyFilesError, match="is damaged .*restore it from a backup, or move it away"):
        keys.load(data)


def test_rotation_refuses_while_a_tracker_runs_on_the_data(data: Path) -> None:
    before = current(data).public_key
    fd = datalock.hold(data, "start the tracker")  # what mist-server and mist-tracker do at start
    try:
        with pytest.raises(DataInUse, match=r"in use by pid \d+ \(start the tracker\); stop that tracker"):
            keys.rotate_stopped(data, NOW)
    finally:
        os.close(fd)
    assert current(data).public_key == before and not keys.pending_path(data).exists()
    keys.rotate_stopped(data, NOW)  # once it stopped


def test_rotation_says_what_to_check_without_a_key_or_a_database(tmp_path: Path, data: Path) -> None:
    with pytest.raises(KeyFilesError, match="no signing key at .*is .* the tracker's data directory"):
        keys.rotate_stopped(tmp_path / "elsewhere", NOW)
    (data / "tracker.db").unlink()
    with pytest.raises(NoDatabase, match="no tracker database at .*MIST_DATABASE_URL"):
        keys.rotate_stopped(data, NOW)
    assert not keys.pending_path(data).exists()


async def test_the_tracker_serves_its_chain_at_api_info(data: Path, aiohttp_client) -> None:
    first = current(data)
    keys.rotate_stopped(data, NOW)
    keys.rotate_stopped(data, NOW)
    ctx = TrackerContext.open(backends.settings(data))
    client = await aiohttp_client(make_app(ctx))
    info = await (await client.get("/api/info")).json()
    assert info["public_key"] == ctx.signer.public_key == current(data).public_key
    assert info["key_fingerprint"] == fingerprint(info["public_key"])
    chain = [Handover.from_json(h) for h in info["key_handovers"]]
    assert follow(first.public_key, info["public_key"], chain) == chain


def test_the_admin_command_reports_the_keys_and_exactly_what_to_do_next(data: Path) -> None:
    runner = CliRunner()
    said = runner.invoke(mist_admin.main, ["rotate-key", "--data", str(data)])
    assert said.exit_code == 0, said.output
    new = fingerprint(current(data).public_key)
    assert f"new key  {new}" in said.output and "3 builds signed again" in said.output
    assert "Start the tracker again" in said.output and "--public-key " + current(data).public_key in said.output
    assert "Friends need do nothing" in said.output
    leaked = runner.invoke(mist_admin.main, ["rotate-key", "--data", str(data), "--leaked", "--json"])
    assert leaked.exit_code == 0, leaked.output
    report = json.loads(leaked.output)
    assert report["handed_over"] is False and report["new_fingerprint"] == fingerprint(current(data).public_key)
    text = mist_admin.report(keys.Rotation(data, report["old_key"], report["new_key"], False, 3, False))
    assert f"--fingerprint {report['new_fingerprint']}" in text and "log in again" in text
    refused = runner.invoke(mist_admin.main, ["rotate-key", "--data", str(data / "nowhere")])
    assert refused.exit_code == 1 and "Error: there is no signing key" in refused.output
