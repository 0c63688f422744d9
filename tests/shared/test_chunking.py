"""Content-defined chunking: stable cut points, bounded sizes, and chunks that survive an insertion."""

import hashlib
import random

import pytest

from shared.chunking import DEFAULT_PARAMS, ChunkingParams, chunk_bytes, chunk_file
from shared.errors import ManifestError

MiB = 1024 * 1024
SMALL = ChunkingParams(min_size=256, avg_size=1024, max_size=4096)
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.fixture(scope="module")
def buffer() -> bytes:
    return random.Random(20240501).randbytes(4 * MiB)


def test_cut_points_are_stable_for_a_fixed_seed(buffer):
    chunked = chunk_bytes(buffer)
    assert chunked.size == 4 * MiB
    assert chunked.sha256 == "bdca57476553eabfc3b5055c1219f126840c68c622f7ef751a26aa7bce2cf2ce"
    assert len(chunked.chunks) == 61
    assert [(c.sha256, c.size) for c in chunked.chunks[:3]] == [
        ("2fa4b5b59db15f6516b432750436c03cbfcda0cfa89ab2ab60081d409882ab7b", 33111),
        ("6c3627f61e0a5796f42875036ec2a588ec5a3eaf41ce13f350e0c2ecbeef567a", 88854),
        ("5e8748acfba4655e26b95bca2a1570fa5cc6d4a742a96602fd45396a3c6cdcec", 85357),
    ]


def test_chunks_cover_the_buffer_and_are_named_by_their_bytes(buffer):
    chunked = chunk_bytes(buffer)
    offset = 0
    for ref in chunked.chunks:
        assert hashlib.sha256(buffer[offset : offset + ref.size]).hexdigest() == ref.sha256
        offset += ref.size
    assert offset == len(buffer)


@pytest.mark.parametrize(
    ("params", "size"), [(DEFAULT_PARAMS, 4 * MiB), (SMALL, 256 * 1024)], ids=["default", "small"]
)
def test_sizes_respect_min_and_max_except_the_last(buffer, params, size):
    chunks = chunk_bytes(buffer[:size], params).chunks
    assert len(chunks) > 10
    assert all(params.min_size <= c.size <= params.max_size for c in chunks[:-1])
    assert 0 < chunks[-1].size <= params.max_size


def test_max_size_cuts_content_with_no_natural_boundary():
    chunks = chunk_bytes(bytes(MiB)).chunks
    assert [c.size for c in chunks] == [DEFAULT_PARAMS.max_size] * 4
    assert len({c.sha256 for c in chunks}) == 1


def test_a_buffer_shorter_than_min_is_one_chunk():
    data = b"tiny file"
    chunked = chunk_bytes(data)
    assert [(c.sha256, c.size) for c in chunked.chunks] == [(hashlib.sha256(data).hexdigest(), len(data))]


def test_chunk_file_equals_chunk_bytes(tmp_path, buffer):
    path = tmp_path / "game.pak"
    path.write_bytes(buffer[: 3 * MiB + 12345])
    assert chunk_file(path) == chunk_bytes(buffer[: 3 * MiB + 12345])
    assert chunk_file(path, SMALL) == chunk_bytes(buffer[: 3 * MiB + 12345], SMALL)


def test_empty_input_has_no_chunks_and_the_empty_hash(tmp_path):
    path = tmp_path / "empty"
    path.write_bytes(b"")
    for chunked in (chunk_bytes(b""), chunk_file(path)):
        assert (chunked.size, chunked.sha256, chunked.chunks) == (0, EMPTY_SHA256, ())


def test_an_insertion_near_the_start_leaves_most_chunks_shared(buffer):
    before = chunk_bytes(buffer).chunks
    after = chunk_bytes(buffer[:1000] + b"a patch note" + buffer[1000:]).chunks
    old = {c.sha256 for c in before}
    shared = sum(c.sha256 in old for c in after)
    assert shared >= len(after) - 2
    assert after[0].sha256 not in old


def test_parameters_round_trip_through_json():
    params = ChunkingParams(min_size=1024, avg_size=4096, max_size=65536, normalization=2)
    assert ChunkingParams.from_json(params.to_json()) == params
    assert DEFAULT_PARAMS.to_json() == {
        "algorithm": "fastcdc2020", "min": 16384, "avg": 65536, "max": 262144, "normalization": 1,
    }


@pytest.mark.parametrize(
    "changes",
    [{"algorithm": "rabin"}, {"min": 32}, {"max": 32 * MiB}, {"avg": 1024 * 1024, "max": 1024}, {"normalization": -1},
     {"min": 16384.0}],
)
def test_bad_parameters_are_rejected(changes):
    with pytest.raises(ManifestError):
        ChunkingParams.from_json(dict(DEFAULT_PARAMS.to_json(), **changes))
