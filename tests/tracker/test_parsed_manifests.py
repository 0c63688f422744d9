"""The tracker's parsed manifests (for the parts that walk whole builds) are bounded by their JSON's bytes as well as
by count: a few 100 GB builds would otherwise be gigabytes of Python objects."""

from __future__ import annotations

import hashlib

import pytest

from shared.chunking import DEFAULT_PARAMS, ChunkRef
from shared.manifest import FileEntry, Manifest
from tracker.routes import updates

pytestmark = pytest.mark.same_on_every_backend  # pure: no database or store


def _manifest(version: str, files: int) -> bytes:
    entries = []
    for n in range(files):
        chunk = hashlib.sha256(f"{version}/{n}".encode()).hexdigest()
        entries.append(FileEntry(f"f{n:04d}", 10, False, hashlib.sha256(chunk.encode()).hexdigest(), (ChunkRef(chunk, 10),)))
    return Manifest("big", version, DEFAULT_PARAMS, tuple(entries)).canonical_bytes()


def test_parsed_manifests_beyond_the_byte_bound_are_dropped_oldest_first_and_the_newest_kept(monkeypatch) -> None:
    monkeypatch.setattr(updates, "_parsed", type(updates._parsed)(lambda kept: kept[1], 0, updates.PARSED_KEPT))
    builds = {v: _manifest(v, 100) for v in ("1", "2", "3")}
    digests = {v: hashlib.sha256(data).hexdigest() for v, data in builds.items()}
    updates._parsed.kept_bytes = 2 * len(builds["1"]) + 10  # room for two
    parsed = {v: updates.parsed_manifest(digests[v], data) for v, data in builds.items()}
    assert updates._parsed.kept() == [digests["2"], digests["3"]]
    assert updates.parsed_manifest(digests["3"], builds["3"]) is parsed["3"]  # kept: not parsed again
    again = updates.parsed_manifest(digests["1"], builds["1"])
    assert again is not parsed["1"] and again == parsed["1"]
    assert updates._parsed.kept() == [digests["3"], digests["1"]]
    updates._parsed.kept_bytes = 1  # one alone over the bound is still kept
    updates.parsed_manifest(digests["2"], builds["2"])
    assert updates._parsed.kept() == [digests["2"]]
