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
    assert target.read_bytes() == DATA["a"]  # only what was asked for, checked, reached the file
    checked = check_and_write(pack.encode([record("a")]), [SHA["a"]], {SHA["a"]: 5000}, {SHA["a"]: [(target, 0)]})
    assert checked.written == (SHA["a"],) and target.read_bytes() == DATA["a"]
