"""Chunk sources: a seeder's answer is checked before a byte of it is written, and what breaks the pack protocol
is the seeder's breach (a PackError, retried like an outage), never a write."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from client.sources import check_and_write
from shared import compression, pack
from shared.errors import PackError, RemoteProtocolError

DATA = {name: bytes([i]) * 5000 for i, name in enumerate("ab")}
SHA = {name: hashlib.sha256(d).hexdigest() for name, d in DATA.items()}


def record(name: str) -> pack.Record:
    return pack.Record(pack.CHUNK, SHA[name], compression.compress(DATA[name], 3))


@pytest.mark.parametrize("records", [["a", "b"], ["a", "a"]], ids=["not asked for", "twice"])
def test_an_answer_with_a_chunk_not_asked_for_is_the_seeders_breach(tmp_path: Path, records: list[str]) -> None:
    target = tmp_path / "file.bin"
    target.write_bytes(b"\0" * 5000)
    body = pack.encode(record(name) for name in records)
    with pytest.raises(PackError, match="which was not asked for") as raised:
        check_and_write(body, [SHA["a"]], {SHA["a"]: 5000}, {SHA["a"]: [(target, 0)]})
    assert isinstance(raised.value, RemoteProtocolError)
    assert target.read_bytes() == b"\0" * 5000  # an answer that breaks the protocol writes nothing, not even its good part
    checked = check_and_write(pack.encode([record("a")]), [SHA["a"]], {SHA["a"]: 5000}, {SHA["a"]: [(target, 0)]})
    assert checked.written == (SHA["a"],) and target.read_bytes() == DATA["a"]


def test_a_corrupt_chunk_among_good_ones_is_named_and_the_good_ones_are_written(tmp_path: Path) -> None:
    """One bad frame makes the one-call decompression of the answer fail; each chunk is then tried alone."""
    chunks = {bytes([i]) * 3000 + bytes(range(i)): b"" for i in range(5)}
    shas = [hashlib.sha256(data).hexdigest() for data in chunks]
    sizes = {sha: len(data) for sha, data in zip(shas, chunks)}
    offsets = dict(zip(shas, [0, 3000, 6001, 9003, 20000]))  # three back to back, one apart, one far
    target = tmp_path / "file.bin"
    target.write_bytes(b"\0" * 30000)
    records = [pack.Record(pack.CHUNK, sha, compression.compress(data, 3)) for sha, data in zip(shas, chunks)]
    records[1] = pack.Record(pack.CHUNK, shas[1], records[1].payload[:-4])  # cut short
    records[3] = pack.Record(pack.CHUNK, shas[3], compression.compress(b"not this chunk", 3))
    checked = check_and_write(pack.encode(records), shas, sizes, {sha: [(target, offsets[sha])] for sha in shas})
    assert checked.corrupt == (shas[1], shas[3]) and checked.written == (shas[0], shas[2], shas[4])
    written = target.read_bytes()
    for sha, data in zip(shas, chunks):
        at = offsets[sha]
        assert written[at : at + len(data)] == (data if sha in checked.written else bytes(len(data)))


def test_an_answer_decompressed_in_one_call_writes_every_chunk_where_it_belongs(tmp_path: Path) -> None:
    """Chunks back to back in one file, one of them at two places, and a second file: runs are cut right."""
    data = [bytes([i]) * (1000 + i) for i in range(6)]
    shas = [hashlib.sha256(d).hexdigest() for d in data]
    first, second = tmp_path / "first.bin", tmp_path / "second.bin"
    first.write_bytes(b"\0" * 8000)
    second.write_bytes(b"\0" * 3000)
    places: dict[str, list[tuple[Path, int]]] = {}
    at = 0
    for sha, d in zip(shas[:4], data[:4]):
        places[sha] = [(first, at)]
        at += len(d)
    places[shas[1]].append((first, 6000))
    places[shas[4]] = [(second, 0)]
    places[shas[5]] = [(second, 1004)]
    body = pack.encode(pack.Record(pack.CHUNK, sha, compression.compress(d, 3)) for sha, d in zip(shas, data))
    checked = check_and_write(body, shas, {sha: len(d) for sha, d in zip(shas, data)}, places)
    assert checked.written == tuple(shas) and not checked.corrupt
    assert first.read_bytes() == b"".join(data[:4]) + bytes(6000 - at) + data[1] + bytes(8000 - 6000 - len(data[1]))
    assert second.read_bytes() == data[4] + data[5] + bytes(3000 - 1004 - len(data[5]))
