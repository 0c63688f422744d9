"""Assembly's fallbacks one by one, against a seeder faked at its HTTP answers: every way a file can come
(a patch, an rdiff delta, local chunks) that fails leaves the file to come by chunks, and the tree is right."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest

from client import staging
from client.assembly import Assembly
from client.plan import CHUNKS, PATCH, PatchRef, Route, Routes, Target, index_chunks, plan
from client.sources import Seeder
from shared import compression, pack, patch
from shared.chunking import DEFAULT_PARAMS, chunk_bytes
from shared.manifest import FileEntry, Manifest

rng = random.Random(18)
OLD = rng.randbytes(300_000)
NEW = OLD[:100_000] + rng.randbytes(2_000) + OLD[100_000:]


def entry(path: str, data: bytes) -> FileEntry:
    return FileEntry(path, len(data), False, hashlib.sha256(data).hexdigest(), chunk_bytes(data, DEFAULT_PARAMS).chunks)


class FakeSeeder:
    """The seeder's /fetch (packs of the objects it holds) and /delta (a set answer); what was asked is kept."""

    def __init__(self, objects: dict[str, bytes], delta: bytes = b"") -> None:
        self.objects, self.delta = objects, delta
        self.fetched: list[str] = []

    async def seeder(self, url: str, ticket: str, body: bytes, most: int) -> bytes:
        if url.endswith("/delta"):
            return self.delta
        hashes = pack.decode_hashes(body, 4096)
        self.fetched += hashes
        return pack.encode(pack.Record(pack.CHUNK, h, compression.compress(self.objects[h])) if h in self.objects
                           else pack.Record(pack.MISSING, h, b"") for h in hashes)


class Bar:
    def advance(self, amount: int) -> None:
        pass


async def ticket() -> str:
    return "ticket"


async def assemble(root: Path, seeder: FakeSeeder, routes: Routes = Routes({}), holders: dict[str, Path] | None = None,
                   unknown: dict[str, Path] | None = None, local_files: list[tuple[str, FileEntry]] = ()) -> Assembly:
    target = Manifest("g", "2", DEFAULT_PARAMS, (entry("data/world.pak", NEW),))
    made = plan(Target.of(target), {}, [], index_chunks(local_files))
    assembly = Assembly(root, made, Bar(), routes, holders=holders, unknown=unknown, build="ab" * 32)  # type: ignore[arg-type]

    async def source() -> Seeder:
        return Seeder("http://seeder", ticket)

    await assembly.run(source, seeder)  # type: ignore[arg-type]
    assert staging.staged_path(root, target.files[0]).read_bytes() == NEW
    return assembly


def chunks_of(data: bytes) -> dict[str, bytes]:
    out, at = {}, 0
    for ref in chunk_bytes(data, DEFAULT_PARAMS).chunks:
        out[ref.sha256], at = data[at:at + ref.size], at + ref.size
    return out


def patch_route(obj: bytes) -> Routes:
    name = hashlib.sha256(obj).hexdigest()
    ref = PatchRef(name, hashlib.sha256(OLD).hexdigest(), len(obj), len(obj), "hdiff")
    return Routes({"data/world.pak": Route(PATCH, len(obj), 200_000, 300_000, ref)})


@pytest.fixture
def old_file(tmp_path: Path) -> Path:
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "world.pak").write_bytes(OLD)
    return tmp_path / "old" / "world.pak"


async def test_a_patch_that_applies_brings_the_file_without_its_chunks(tmp_path: Path, old_file: Path) -> None:
    obj = patch.make(OLD, NEW)
    seeder = FakeSeeder({hashlib.sha256(obj).hexdigest(): obj})
    done = await assemble(tmp_path / "game", seeder, patch_route(obj), {hashlib.sha256(OLD).hexdigest(): old_file})
    assert done.files[PATCH] == 1 and done.files[CHUNKS] == 0 and not done.fell_back
    assert seeder.fetched == [hashlib.sha256(obj).hexdigest()]


async def test_a_patch_the_seeder_no_longer_has_falls_back_to_chunks(tmp_path: Path, old_file: Path) -> None:
    obj = patch.make(OLD, NEW)
    seeder = FakeSeeder(chunks_of(NEW))  # the patch object was collected since the plan
    done = await assemble(tmp_path / "game", seeder, patch_route(obj), {hashlib.sha256(OLD).hexdigest(): old_file})
    assert done.fell_back == ["data/world.pak"] and done.files[CHUNKS] == 1


async def test_a_patch_whose_local_source_is_damaged_falls_back_to_chunks(tmp_path: Path, old_file: Path) -> None:
    obj = patch.make(OLD, NEW)
    old_file.write_bytes(OLD[:-1] + b"!")  # a byte changed since the install recorded it
    seeder = FakeSeeder({hashlib.sha256(obj).hexdigest(): obj, **chunks_of(NEW)})
    done = await assemble(tmp_path / "game", seeder, patch_route(obj), {hashlib.sha256(OLD).hexdigest(): old_file})
    assert done.fell_back == ["data/world.pak"] and done.files[CHUNKS] == 1


async def test_an_rdiff_delta_that_does_not_apply_falls_back_to_chunks(tmp_path: Path, old_file: Path) -> None:
    seeder = FakeSeeder(chunks_of(NEW), delta=compression.compress(b"not an rdiff delta" * 10))
    done = await assemble(tmp_path / "game", seeder, unknown={"data/world.pak": old_file})
    assert done.fell_back == ["data/world.pak"] and done.files[CHUNKS] == 1 and done.signature_bytes > 0


async def test_when_the_seeder_finds_chunks_cheaper_than_a_delta_the_chunks_come(tmp_path: Path, old_file: Path) -> None:
    seeder = FakeSeeder(chunks_of(NEW), delta=b"")
    done = await assemble(tmp_path / "game", seeder, unknown={"data/world.pak": old_file})
    assert not done.fell_back and done.files[CHUNKS] == 1


async def test_local_chunks_that_no_longer_hash_right_are_fetched(tmp_path: Path, old_file: Path) -> None:
    installed = entry("data/world.pak", OLD)
    old_file.write_bytes(bytes(len(OLD)))  # zeroed since: every local copy fails its check
    seeder = FakeSeeder(chunks_of(NEW))
    done = await assemble(tmp_path / "game", seeder, local_files=[(str(old_file), installed)])
    assert done.reused == 0 and set(seeder.fetched) == set(chunks_of(NEW))
    intact = tmp_path / "intact.pak"
    intact.write_bytes(OLD)
    seeder = FakeSeeder(chunks_of(NEW))
    done = await assemble(tmp_path / "game2", seeder, local_files=[(str(intact), installed)])
    assert done.reused > 150_000 and done.files[CHUNKS] == 1  # the chunks the insertion touched only
    assert len(seeder.fetched) < len(chunks_of(NEW))
