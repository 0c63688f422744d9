"""Manifest deltas: rebuilt byte for byte (formats 1 and 2 alike), and refused whole when anything disagrees."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pytest

from shared import manifest as manifest_mod, manifest_delta
from shared.errors import ManifestError

FIXTURE = Path(__file__).parent / "fixtures" / "manifest-v1.json"


def big_manifest(seed: int, files: int = 60, chunks: int = 40) -> dict:
    rng = random.Random(seed)
    return {
        "chunking": {"algorithm": "fastcdc2020", "min": 16384, "avg": 65536, "max": 262144, "normalization": 1},
        "files": [{"chunks": [[rng.randbytes(32).hex(), 1000] for _ in range(chunks)], "executable": False,
                   "path": f"data/f{i:03d}.bin", "sha256": rng.randbytes(32).hex(), "size": 1000 * chunks}
                  for i in range(files)],
        "format": 1, "game": "big", "version": "1",
    }


def canonical(obj: dict) -> bytes:
    return manifest_mod.canonical_json(obj)


def next_version(obj: dict, links: bool = False) -> dict:
    new = json.loads(json.dumps(obj))
    new["version"] = "2"
    new["files"][7]["chunks"][3][0] = hashlib.sha256(b"changed").hexdigest()
    new["files"][7]["sha256"] = hashlib.sha256(b"file changed").hexdigest()
    del new["files"][20]
    if links:
        new["format"], new["links"] = 2, [{"path": "data/latest.bin", "target": "f000.bin"}]
    return new


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("links", [False, True], ids=["format-1", "format-2-links"])
def test_a_delta_rebuilds_the_new_manifest_exactly_and_is_small(links: bool) -> None:
    old = canonical(big_manifest(1))
    new = canonical(next_version(big_manifest(1), links))
    manifest_mod.parse(new)  # a real, canonical manifest of its format
    delta = manifest_delta.make(old, new)
    assert manifest_delta.apply(old, delta, sha(new)) == new
    assert len(delta) < len(new) / 20


def test_the_committed_fixture_travels_as_a_delta_from_another_build() -> None:
    fixture = FIXTURE.read_bytes()
    other = canonical(big_manifest(3, files=3, chunks=2))
    assert manifest_delta.apply(other, manifest_delta.make(other, fixture), sha(fixture)) == fixture


def test_the_header_names_both_builds() -> None:
    old, new = canonical(big_manifest(1)), canonical(next_version(big_manifest(1)))
    header = manifest_delta.read_header(manifest_delta.make(old, new))
    assert (header.base, header.target, header.target_size) == (sha(old), sha(new), len(new))


def test_a_delta_from_another_base_is_refused() -> None:
    old, new = canonical(big_manifest(1)), canonical(next_version(big_manifest(1)))
    delta = manifest_delta.make(old, new)
    with pytest.raises(ManifestError, match="not the one held here"):
        manifest_delta.apply(canonical(big_manifest(2)), delta, sha(new))


def test_a_delta_to_another_build_than_asked_is_refused() -> None:
    old, new = canonical(big_manifest(1)), canonical(next_version(big_manifest(1)))
    with pytest.raises(ManifestError, match="not .* that was asked for"):
        manifest_delta.apply(old, manifest_delta.make(old, new), sha(old))


def test_a_damaged_delta_is_refused_with_what_to_do() -> None:
    old, new = canonical(big_manifest(1)), canonical(next_version(big_manifest(1)))
    delta = bytearray(manifest_delta.make(old, new))
    delta[-20] ^= 0x55
    with pytest.raises(ManifestError, match="fetch the whole manifest"):
        manifest_delta.apply(old, bytes(delta), sha(new))


@pytest.mark.parametrize("blob", [b"", b"MISTMDL1" + b"\0" * 10, b"NOTADELT" + b"\0" * 72])
def test_what_is_not_a_delta_is_refused(blob: bytes) -> None:
    with pytest.raises(ManifestError, match="fetch the whole manifest"):
        manifest_delta.apply(b"{}", blob, "0" * 64)


def test_a_delta_declaring_a_huge_manifest_is_refused_before_allocating() -> None:
    old, new = canonical(big_manifest(1)), canonical(next_version(big_manifest(1)))
    delta = bytearray(manifest_delta.make(old, new))
    delta[72:80] = (1 << 40).to_bytes(8, "big")
    with pytest.raises(ManifestError, match="more than any manifest"):
        manifest_delta.apply(old, bytes(delta), sha(new))
