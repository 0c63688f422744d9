"""Chunk compression: a batch decompressed in one call gives exactly what chunk-by-chunk decompression gives,
and anything it cannot do whole (a corrupt frame, an empty batch) is handed back, never a crash."""

from __future__ import annotations

import gc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import compression
from shared.errors import ChunkCorrupt

CHUNKS = [bytes([i]) * 4000 + bytes(range(256)) * i for i in range(8)]


def test_a_batch_gives_each_chunk_as_decompressing_it_alone_does() -> None:
    frames = [compression.compress(chunk, 3) for chunk in CHUNKS]
    contents = compression.decompress_many(frames, [len(chunk) for chunk in CHUNKS])
    assert contents is not None
    del frames
    gc.collect()  # the views keep their buffer alive
    assert [bytes(view) for view in contents] == CHUNKS


@pytest.mark.parametrize(
    "spoil",
    [
        lambda frames, sizes: (frames[:3] + [frames[3][:-5]] + frames[4:], sizes),
        lambda frames, sizes: (frames[:2] + [b"not zstd at all"] + frames[3:], sizes),
        lambda frames, sizes: (frames[:2] + [b""] + frames[3:], sizes),
        lambda frames, sizes: (frames, sizes[:5] + [sizes[5] + 1] + sizes[6:]),
        lambda frames, sizes: (frames, sizes[:5] + [sizes[5] - 1] + sizes[6:]),
        lambda frames, sizes: (frames, sizes[:-1]),
        lambda frames, sizes: ([], []),  # python-zstandard would kill the process with SIGFPE
    ],
    ids=["cut short", "not a frame", "empty frame", "larger than named", "smaller than named", "a size short", "empty"],
)
def test_a_batch_that_cannot_be_done_whole_is_handed_back(spoil) -> None:
    frames, sizes = spoil([compression.compress(chunk, 3) for chunk in CHUNKS], [len(chunk) for chunk in CHUNKS])
    assert compression.decompress_many(frames, sizes) is None


def test_a_backend_without_the_batch_call_hands_every_batch_back(monkeypatch: pytest.MonkeyPatch) -> None:
    frames, sizes = [compression.compress(CHUNKS[0], 3)], [len(CHUNKS[0])]
    monkeypatch.setattr(compression.zstandard, "backend", "cffi")  # PyPy's: it has the call, and raises
    assert compression.decompress_many(frames, sizes) is None
    monkeypatch.undo()

    class OneByOne:  # a decompressor without the call at all
        pass

    monkeypatch.setattr(compression._local, "decompressor", OneByOne(), raising=False)
    assert compression.decompress_many(frames, sizes) is None


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.binary(min_size=1, max_size=600), st.integers(0, 3), st.integers(0, 255)), min_size=1, max_size=6))
def test_a_batch_agrees_with_one_by_one_on_any_damage(items: list[tuple[bytes, int, int]]) -> None:
    frames, sizes, expected = [], [], []
    for data, damage, byte in items:
        frame = bytearray(compression.compress(data, 3))
        if damage == 1:
            frame[byte % len(frame)] ^= 0xFF
        elif damage == 2:
            del frame[byte % len(frame) :]
        frames.append(bytes(frame))
        sizes.append(len(data) + (damage == 3))
        try:
            expected.append(compression.decompress(bytes(frame), sizes[-1]))
        except ChunkCorrupt:
            expected.append(None)
    contents = compression.decompress_many(frames, sizes)
    if contents is None:
        assert None in expected
    else:  # a damaged frame may still decompress (to wrong bytes): the caller's hash is what catches that
        assert [bytes(view) for view in contents] == expected
