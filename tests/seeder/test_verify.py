"""What the seeder checks before it stores an uploaded chunk."""

import hashlib

import pytest
import zstandard

from seeder.verify import MAX_CHUNK, verify_upload
from shared import compression
from shared.errors import ChunkCorrupt, PackError
from shared.pack import CHUNK, MISSING, Record

DATA = b"level data " * 1000
NAME = hashlib.sha256(DATA).hexdigest()


def test_a_good_chunk_passes():
    verify_upload(Record(CHUNK, NAME, compression.compress(DATA)))


def test_a_chunk_under_the_wrong_name_is_corrupt():
    other = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(ChunkCorrupt, match="hashes to") as info:
        verify_upload(Record(CHUNK, other, compression.compress(DATA)))
    assert info.value.chunk_id == other


def test_a_frame_without_content_size_is_corrupt():
    frame = zstandard.ZstdCompressor(write_content_size=False).compress(DATA)
    assert zstandard.ZstdDecompressor().decompress(frame, max_output_size=len(DATA)) == DATA
    with pytest.raises(ChunkCorrupt, match="declares its size"):
        verify_upload(Record(CHUNK, NAME, frame))


@pytest.mark.parametrize(
    "payload", [b"", b"garbage", b"\x28\xb5\x2f\xfd" + b"\xff" * 20], ids=["empty", "text", "bad-frame"]
)
def test_garbage_is_corrupt(payload):
    with pytest.raises(ChunkCorrupt):
        verify_upload(Record(CHUNK, NAME, payload))


def test_a_frame_declaring_more_than_the_maximum_is_corrupt():
    data = bytes(MAX_CHUNK + 1)
    frame = compression.compress(data, level=1)
    with pytest.raises(ChunkCorrupt, match="declares its size"):
        verify_upload(Record(CHUNK, hashlib.sha256(data).hexdigest(), frame))


def test_an_empty_chunk_is_corrupt():
    with pytest.raises(ChunkCorrupt):
        verify_upload(Record(CHUNK, hashlib.sha256(b"").hexdigest(), compression.compress(b"")))


def test_a_truncated_frame_is_corrupt():
    frame = compression.compress(DATA)
    with pytest.raises(ChunkCorrupt):
        verify_upload(Record(CHUNK, NAME, frame[:-4]))


def test_bytes_after_the_frame_are_corrupt():
    # The upload must be *one* zstd frame: trailing bytes would be stored and served to every client.
    with pytest.raises(ChunkCorrupt):
        verify_upload(Record(CHUNK, NAME, compression.compress(DATA) + b"trailing junk"))


def test_a_missing_record_in_an_upload_is_a_pack_error():
    with pytest.raises(PackError, match="only CHUNK records"):
        verify_upload(Record(MISSING, NAME, b""))
