"""Properties of the chunk pack: any records read back as written, and any bytes a seeder or client receives
are read as records or refused with a PackError, without allocating what a record header claims."""

from __future__ import annotations

from contextlib import suppress

import pytest
from hypothesis import given, strategies as st

from shared import pack
from shared.errors import PackError
from tests.hostile import allocation_peak
from tests.shared.strategies import sha256_hex

pytestmark = pytest.mark.same_on_every_backend  # pure: bytes in, records out

records = st.one_of(
    st.builds(pack.Record, st.just(pack.CHUNK), sha256_hex, st.binary(max_size=200)),
    st.builds(pack.Record, st.just(pack.MISSING), sha256_hex, st.just(b"")),
)
# A header whose claimed length is anything a 4-byte field holds, followed by fewer bytes than it claims.
lying_headers = st.builds(
    lambda kind, digest, length, tail: pack.HEADER.pack(kind, digest, length) + tail,
    st.sampled_from([pack.CHUNK, pack.MISSING, pack.END]) | st.integers(min_value=0, max_value=255),
    st.just(bytes(32)) | st.binary(min_size=32, max_size=32),
    st.sampled_from([0, pack.MAX_RECORD, pack.MAX_RECORD + 1, 2**32 - 1]) | st.integers(0, 2**32 - 1),
    st.binary(max_size=64),
)


def _read(data: bytes) -> list[tuple[int, str, bytes]]:
    return [(r.kind, r.sha256, bytes(r.payload)) for r in pack.iter_records(data)]


@given(st.lists(records, max_size=8))
def test_records_read_back_as_written_and_encode_to_the_same_bytes(written: list[pack.Record]) -> None:
    data = pack.encode(written)
    assert _read(data) == [(r.kind, r.sha256, bytes(r.payload)) for r in written]
    assert pack.encode(pack.iter_records(data)) == data
    assert _read(memoryview(data)) == _read(data)


@given(st.lists(sha256_hex, max_size=40), st.integers(min_value=0, max_value=100))
def test_a_hash_list_reads_back_within_its_limit_or_is_refused(hashes: list[str], limit: int) -> None:
    data = pack.encode_hashes(hashes)
    if len(hashes) <= limit:
        assert pack.decode_hashes(data, limit) == hashes
    else:
        with pytest.raises(PackError, match="at most"):
            pack.decode_hashes(data, limit)


@given(st.binary(max_size=400) | lying_headers | st.lists(lying_headers, max_size=3).map(b"".join))
def test_any_bytes_are_records_or_a_pack_error_and_nothing_is_allocated_for_a_claim(data: bytes) -> None:
    read: list[tuple[int, str, bytes]] = []
    with suppress(PackError):
        read = _read(data)
        assert pack.encode(pack.Record(k, s, p) for k, s, p in read) == data  # what reads is exactly a pack
    assert all(len(payload) <= pack.MAX_RECORD for _, _, payload in read)
    assert allocation_peak(lambda: _read(data), (PackError,)) < 4 * len(data) + 64 * 1024


@given(st.lists(records, min_size=1, max_size=4), st.data())
def test_a_damaged_or_cut_pack_is_refused_with_a_pack_error_or_read_as_what_it_now_says(written, data) -> None:
    damaged = bytearray(pack.encode(written))
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        at = data.draw(st.integers(min_value=0, max_value=len(damaged) - 1))
        damaged[at] = data.draw(st.integers(min_value=0, max_value=255))
    cut = data.draw(st.integers(min_value=0, max_value=len(damaged)))
    with suppress(PackError):
        read = _read(bytes(damaged[:cut]))
        assert pack.encode(pack.Record(k, s, p) for k, s, p in read) == bytes(damaged[:cut])


@given(st.binary(max_size=300), st.integers(min_value=0, max_value=2**32))
def test_any_hash_list_is_hashes_or_a_pack_error(data: bytes, limit: int) -> None:
    with suppress(PackError):
        hashes = pack.decode_hashes(data, limit)
        assert len(hashes) <= limit and pack.encode_hashes(hashes) == data
