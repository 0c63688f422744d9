"""Mist on an S3 bucket: push, install, update and garbage collection with every object in the bucket, served by
several seeder processes over it (moto's S3 server on loopback stands in for MinIO, R2 or AWS)."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from mistpipe.scan import scan
from tests import backends
from tests.e2e.conftest import ADMIN_PASSWORD, BIN, FRIEND_PASSWORD, Person, Server, free_port, start_server
from tests.e2e.gametree import MB, assert_same_tree, make_tree
from tests.e2e.test_server_seeder_processes import healthz_pids
from tests.s3 import S3Server

GAME = "bucketed"
PREFIX = "mist"


@pytest.fixture(scope="module")
def bucket(s3_server: S3Server) -> str:
    return s3_server.bucket()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server, bucket: str) -> Iterator[Server]:
    env = {**s3_server.env(bucket, PREFIX), "MIST_GC_GRACE_SECONDS": "0"}
    srv = start_server(tmp_path_factory.mktemp("s3-server"), env,
                       args=("--seeder-processes", "2", "--seeder-port", str(free_port())))
    yield srv
    srv.process.terminate()
    srv.process.wait(timeout=30)


def stored(s3_server: S3Server, bucket: str) -> set[str]:
    """The names of the objects in the bucket (not the quarantine, tombstones or probes)."""
    found: set[str] = set()
    for page in s3_server.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{PREFIX}/"):
        for item in page.get("Contents", []):
            parts = item["Key"].split("/")
            if len(parts) == 4 and len(parts[3]) == 64:
                found.add(parts[3])
    return found


def two_versions(base: Path) -> tuple[Path, Path]:
    rng = random.Random(11)
    one = make_tree(base / "1", seed=11, small_files=12, large=(1 * MB,))
    (one / "data" / "retired.bin").write_bytes(rng.randbytes(300 * 1024))  # only version 1 has it
    two = base / "2"
    shutil.copytree(one, two)
    with open(two / "data" / "retired.bin", "rb") as f:
        (two / "data" / "moved.bin").write_bytes(f.read()[:1000] + rng.randbytes(200 * 1024))
    (two / "data" / "retired.bin").unlink()
    return one, two


def test_push_install_update_and_gc_keep_every_object_in_the_bucket(
        server: Server, s3_server: S3Server, bucket: str, tmp_path: Path) -> None:
    assert not (server.data / "store").exists()  # nothing of the store on the server's disk
    with urllib.request.urlopen(f"{server.url}/api/info", timeout=10) as response:
        seeder_url = json.load(response)["seeder_url"]
    assert len(healthz_pids(seeder_url, 2)) == 2  # two seeder processes, one bucket (their /healthz probes it)

    one, two = two_versions(tmp_path / "builds")
    admin = Person(tmp_path / "admin", ADMIN_PASSWORD)
    admin.run("mistpipe", "login", server.url, "--user", "admin")
    admin.run("mistpipe", "new-game", GAME, "--title", "Bucketed")
    first = admin.json("mistpipe", "push", GAME, str(one), "--version", "1", "--wait")
    chunks_one = set(scan(one, GAME, "1").chunk_sizes())
    assert chunks_one | {first["digest"]} <= stored(s3_server, bucket)
    again = admin.json("mistpipe", "push", GAME, str(one), "--version", "1b")
    assert again["chunks_uploaded"] == 0  # push dedup asks the bucket what it holds

    admin.run("mistpipe", "user", "add", "erin", env={"MIST_PASSWORD": FRIEND_PASSWORD})
    erin = Person(tmp_path / "erin", FRIEND_PASSWORD)
    erin.run("mist", "login", server.url, "--user", "erin")
    installed = erin.json("mist", "install", GAME, "--dir", str(tmp_path / "game"), "--version", "1")
    assert installed["bytes_downloaded"] > 0
    assert_same_tree(one, tmp_path / "game")

    second = admin.json("mistpipe", "push", GAME, str(two), "--version", "2", "--wait")
    erin.json("mist", "update", GAME, "--to", "2")
    assert_same_tree(two, tmp_path / "game")

    chunks_two = set(scan(two, GAME, "2").chunk_sizes())
    only_one = chunks_one - chunks_two
    assert only_one
    admin.json("mistpipe", "rm", GAME, "1b", "--wait")
    removed = admin.json("mistpipe", "rm", GAME, "1", "--wait")
    assert removed["gc"]["done"] and removed["gc"]["result"]["objects_removed"] >= len(only_one) + 1
    left = stored(s3_server, bucket)
    assert not only_one & left and first["digest"] not in left
    assert chunks_two | {second["digest"]} <= left

    fresh = Person(tmp_path / "fresh", FRIEND_PASSWORD)
    fresh.run("mist", "login", server.url, "--user", "erin")
    fresh.json("mist", "install", GAME, "--dir", str(tmp_path / "again"))
    assert_same_tree(two, tmp_path / "again")


def test_scrub_sets_a_damaged_object_aside_and_the_next_push_uploads_it_again(
        server: Server, s3_server: S3Server, bucket: str, tmp_path: Path) -> None:
    admin = Person(tmp_path / "admin", ADMIN_PASSWORD)
    admin.run("mistpipe", "login", server.url, "--user", "admin")
    admin.run("mistpipe", "new-game", "scrubbed", "--title", "Scrubbed")
    tree = make_tree(tmp_path / "build", seed=12, small_files=4, large=())
    admin.json("mistpipe", "push", "scrubbed", str(tree), "--version", "1")
    victim = sorted(scan(tree, "scrubbed", "1").chunk_sizes())[0]
    key = f"{PREFIX}/{victim[:2]}/{victim[2:4]}/{victim}"
    s3_server.client().put_object(Bucket=bucket, Key=key, Body=b"\x00not what its name says")
    report = admin.json("mistpipe", "scrub")
    assert report["done"] and victim in report["result"]["corrupt"]
    assert victim not in stored(s3_server, bucket)
    quarantined = s3_server.client().list_objects_v2(Bucket=bucket, Prefix=f"{PREFIX}/quarantine/")["Contents"]
    assert [item["Key"] for item in quarantined] == [f"{PREFIX}/quarantine/{victim}"]
    again = admin.json("mistpipe", "push", "scrubbed", str(tree), "--version", "1.1")
    assert again["chunks_uploaded"] == 1 and victim in stored(s3_server, bucket)


def test_backup_and_restore_carry_the_bucket_into_another(server: Server, s3_server: S3Server, bucket: str,
                                                          tmp_path: Path) -> None:
    def admin_cli(*args: str, env: dict[str, str]) -> dict:
        done = subprocess.run([BIN / "mist-admin", *args, "--json"], capture_output=True, text=True,
                              env={**os.environ, **backends.backend_env(server.data), **env}, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    source = stored(s3_server, bucket)
    made = admin_cli("backup", str(tmp_path / "backup"), "--data", str(server.data), env=s3_server.env(bucket, PREFIX))
    assert made["objects"] > 0 and made["objects_copied"] == made["objects"]
    other = s3_server.bucket()
    restored = admin_cli("restore", str(tmp_path / "backup"), "--data", str(tmp_path / "restored"),
                         env={**s3_server.env(other, "restored"), "MIST_DATABASE_URL": ""})
    assert restored["objects"] == made["objects"]
    found = {item["Key"].rsplit("/", 1)[-1] for item in s3_server.client().list_objects_v2(
        Bucket=other, Prefix="restored/", MaxKeys=1000)["Contents"]}
    assert found == source - set(made["patches_missing"])
