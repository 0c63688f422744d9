"""The chunk pack wire format: a byte fixture, and every way a pack can be cut short or malformed."""

import pytest

from shared.errors import LocalProtocolError, PackError, RemoteProtocolError
from shared.pack import (
    CHUNK, END, HEADER, HEADER_SIZE, MAX_RECORD, MISSING, Record, batches, decode_hashes, encode, encode_hashes, encode_header,
    iter_records,
)

H1 = "11" * 32
H2 = "22" * 32
RECORDS = [Record(CHUNK, H1, b"abc"), Record(MISSING, H2, b"")]
# kind (1 byte) + SHA-256 (32 bytes) + big-endian length (4 bytes), then the payload; END closes the pack.
PACK = (
    b"\x00" + b"\x11" * 32 + b"\x00\x00\x00\x03" + b"abc"
    + b"\x01" + b"\x22" * 32 + b"\x00\x00\x00\x00"
    + b"\x02" + b"\x00" * 32 + b"\x00\x00\x00\x00"
)


def records(data: bytes) -> list[Record]:
    return list(iter_records(data))


def test_encoding_yields_the_fixture_bytes():
    assert HEADER_SIZE == 37
    assert encode(RECORDS) == PACK


def test_the_fixture_parses_to_its_records():
    assert records(PACK) == RECORDS


def test_records_round_trip():
    many = [Record(CHUNK, f"{i:064x}", bytes([i]) * i) for i in range(1, 40)] + [Record(MISSING, "ab" * 32, b"")]
    assert records(encode(many)) == many


def test_an_empty_pack_is_just_end():
    assert encode([]) == PACK[-HEADER_SIZE:]
    assert records(encode([])) == []


def test_records_can_be_read_from_a_memoryview():
    assert records(memoryview(PACK)) == RECORDS


@pytest.mark.parametrize("cut", [0, 1, 20, HEADER_SIZE - 1], ids=lambda n: f"{n}-bytes")
def test_truncated_in_a_header_is_refused(cut):
    with pytest.raises(PackError, match="truncated"):
        records(PACK[:cut])


@pytest.mark.parametrize("cut", [HEADER_SIZE, HEADER_SIZE + 2], ids=lambda n: f"{n}-bytes")
def test_truncated_in_a_payload_is_refused(cut):
    with pytest.raises(PackError, match="cut short"):
        records(PACK[:cut])


def test_missing_end_is_refused():
    with pytest.raises(PackError, match="truncated"):
        records(PACK[:-HEADER_SIZE])


@pytest.mark.parametrize("extra", [b"x", PACK[-HEADER_SIZE:], PACK])
def test_bytes_after_end_are_refused(extra):
    with pytest.raises(PackError, match="after its END"):
        records(PACK + extra)


@pytest.mark.parametrize("kind", [3, 0x7F, 0xFF])
def test_unknown_kind_is_refused(kind):
    with pytest.raises(PackError, match=f"kind {kind} is unknown"):
        records(bytes([kind]) + PACK[1:])


def test_missing_record_with_a_payload_is_refused():
    data = encode_header(MISSING, H2, 3) + b"abc" + PACK[-HEADER_SIZE:]
    with pytest.raises(PackError, match="must not carry a payload"):
        records(data)


def test_end_record_with_a_length_is_refused():
    with pytest.raises(PackError, match="must not carry a payload"):
        records(encode_header(END, "", 3) + b"abc")


def test_end_record_with_a_hash_is_refused():
    # The format says END has a zero hash; parse_header refuses anything a well-behaved sender would not send.
    with pytest.raises(PackError):
        records(encode_header(END, H1, 0))


def test_oversize_length_is_refused_before_reading_the_payload():
    header = HEADER.pack(CHUNK, bytes.fromhex(H1), MAX_RECORD + 1)  # as a hostile sender writes it
    with pytest.raises(PackError, match="exceeds"):
        records(header)


def test_a_record_of_exactly_the_limit_is_accepted_in_the_header():
    header = encode_header(CHUNK, H1, MAX_RECORD)
    with pytest.raises(PackError, match="cut short"):  # the header passed; only the payload is absent
        records(header)


def test_hash_list_round_trips():
    hashes = [H1, H2, "0f" * 32]
    data = encode_hashes(hashes)
    assert data == b"\x11" * 32 + b"\x22" * 32 + b"\x0f" * 32
    assert decode_hashes(data, limit=3) == hashes
    assert decode_hashes(b"", limit=3) == []


@pytest.mark.parametrize("size", [1, 31, 33, 65])
def test_hash_list_not_a_multiple_of_32_is_refused(size):
    with pytest.raises(PackError, match="multiple of 32"):
        decode_hashes(b"\x00" * size, limit=10)


def test_hash_list_over_the_limit_is_refused():
    with pytest.raises(PackError, match="at most 2 per request"):
        decode_hashes(encode_hashes([H1, H2, H1]), limit=2)


def test_batches_keep_order_and_respect_both_limits():
    sizes = {f"{i:064x}": 100 for i in range(10)}
    hashes = list(sizes)
    by_bytes = list(batches(hashes, sizes, max_bytes=250, max_count=100))
    assert by_bytes == [hashes[0:2], hashes[2:4], hashes[4:6], hashes[6:8], hashes[8:10]]
    by_count = list(batches(hashes, sizes, max_bytes=10_000, max_count=3))
    assert [len(b) for b in by_count] == [3, 3, 3, 1] and sum(by_count, []) == hashes


def test_a_chunk_larger_than_the_byte_limit_still_gets_a_batch_of_its_own():
    sizes = {"a" * 64: 500, "b" * 64: 10}
    assert list(batches(list(sizes), sizes, max_bytes=100, max_count=10)) == [["a" * 64], ["b" * 64]]


def test_a_record_we_would_send_wrong_is_our_breach_and_one_we_read_wrong_is_the_senders():
    with pytest.raises(LocalProtocolError, match="named by a SHA-256"):
        encode_header(CHUNK, "not a hash", 3)
    with pytest.raises(LocalProtocolError, match="named by a SHA-256"):
        encode_header(CHUNK, "ab" * 31, 3)
    with pytest.raises(LocalProtocolError, match="limit readers keep"):
        encode_header(CHUNK, H2, MAX_RECORD + 1)
    with pytest.raises(RemoteProtocolError):
        records(b"\x09" + bytes(36))
    assert not issubclass(PackError, LocalProtocolError)
