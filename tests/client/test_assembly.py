"""Assembly's fallbacks one by one, against a seeder faked at its HTTP answers: every way a file can come
(a patch, an rdiff delta, local chunks) that fails leaves the file to come by chunks, and the tree is right."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest

from client import staging
from client.assembly import Assembly, windows
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

    seeder_answer = seeder  # the chunk batches' way (client.api reads those in place); nothing to give back here

    def give_back(self, answer: bytes) -> None:
        pass

    def let_buffers_go(self) -> None:
        pass


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


# ---- windows: a big build is assembled a window of files at a time ------------------------------------------------


class CountingBar:
    """Adds up the bar's progress; on its first advance, notes whether the last file's staged file existed yet."""

    def __init__(self, last: Path) -> None:
        self.done, self.last, self.last_existed_at_first = 0, last, None

    def advance(self, amount: int) -> None:
        if self.last_existed_at_first is None and amount:
            self.last_existed_at_first = self.last.exists()
        self.done += amount


async def test_a_build_bigger_than_a_window_is_fetched_window_by_window_each_chunk_once(tmp_path: Path) -> None:
    # Twelve files of three contents, interleaved: every window repeats chunks an earlier one wrote.
    contents = [rng.randbytes(200_000) for _ in range(3)]
    files = tuple(entry(f"data/pack{i:02d}.bin", contents[i % 3]) for i in range(12))
    made = plan(Target.of(Manifest("g", "1", DEFAULT_PARAMS, files)), {}, [], {})
    root = tmp_path / "game"
    bar = CountingBar(staging.staged_path(root, files[-1]))
    most_chunks = 3 * len(files[0].chunks)  # three files a window
    assembly = Assembly(root, made, bar, Routes({}), build="ab" * 32, window_bytes=1 << 40, window_chunks=most_chunks)
    seeder = FakeSeeder({h: b for data in contents for h, b in chunks_of(data).items()})

    async def source() -> Seeder:
        return Seeder("http://seeder", ticket)

    await assembly.run(source, seeder)  # type: ignore[arg-type]
    for i, f in enumerate(files):
        assert staging.staged_path(root, f).read_bytes() == contents[i % 3]
    assert assembly.windows == 4 and assembly.largest_window <= most_chunks
    assert sorted(seeder.fetched) == sorted({h for data in contents for h in chunks_of(data)})  # each chunk once
    assert bar.done == made.bytes_to_write == assembly.written
    assert bar.last_existed_at_first is False  # bytes flowed before the last window's files were even made
    assert assembly.files[CHUNKS] == 3 and assembly.reused == 9 * 200_000  # later windows copied what the first wrote


async def test_a_resumed_install_keeps_each_windows_staged_chunks(tmp_path: Path) -> None:
    contents = [rng.randbytes(600_000) for _ in range(4)]
    files = tuple(entry(f"f{i}.bin", contents[i]) for i in range(4))
    made = plan(Target.of(Manifest("g", "1", DEFAULT_PARAMS, files)), {}, [], {})
    root = tmp_path / "game"
    (root / ".mist" / staging.STAGING).mkdir(parents=True)
    half = len(contents[3]) // 2
    staging.staged_path(root, files[3]).write_bytes(contents[3][:half] + bytes(len(contents[3]) - half))  # a crash's leftover
    bar = CountingBar(tmp_path / "unused")
    assembly = Assembly(root, made, bar, Routes({}), build="ab" * 32, window_chunks=len(files[0].chunks) + 1)
    seeder = FakeSeeder({h: b for data in contents for h, b in chunks_of(data).items()})

    async def source() -> Seeder:
        return Seeder("http://seeder", ticket)

    await assembly.run(source, seeder)  # type: ignore[arg-type]
    assert [staging.staged_path(root, f).read_bytes() for f in files] == contents
    assert assembly.windows == 4 and bar.done == made.bytes_to_write
    kept = {ref.sha256 for _, ref in files[3].offsets() if _ + ref.size <= half}
    assert kept and not kept & set(seeder.fetched) and assembly.reused >= sum(r.size for r in files[3].chunks if r.sha256 in kept)


def test_windows_keep_the_order_and_their_bounds_and_a_larger_file_goes_alone() -> None:
    sizes = [10, 30, 25, 100, 5, 5, 40]
    files = [FileEntry(f"f{i}", n, False, "00" * 32, ()) for i, n in enumerate(sizes)]
    runs = list(windows(files, 50, 1000))
    assert [[f.size for f in w] for w in runs] == [[10, 30], [25], [100], [5, 5, 40]]
    assert [f for w in runs for f in w] == files
