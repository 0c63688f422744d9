"""rdiff deltas against a local file no build has, and their request format."""

from __future__ import annotations

import random

import pytest

from shared import rdiff
from shared.errors import PatchError


def test_a_delta_from_a_signature_rebuilds_the_target(tmp_path) -> None:
    rng = random.Random(1)
    target = rng.randbytes(1_000_000)
    modded = target[:400_000] + b"a mod was here" + target[400_000:900_000] + target[950_000:]
    basis = tmp_path / "local"
    basis.write_bytes(modded)
    sig = rdiff.signature(basis)
    assert len(sig) < len(target) // 20
    delta = rdiff.delta(sig, target)
    assert len(delta) < 100_000
    assert rdiff.patch(basis, delta, len(target)) == target


def test_garbage_signatures_and_deltas_are_patch_errors(tmp_path) -> None:
    basis = tmp_path / "local"
    basis.write_bytes(b"x" * 10_000)
    with pytest.raises(PatchError):
        rdiff.delta(b"not a signature", b"target")
    with pytest.raises(PatchError):
        rdiff.patch(basis, b"not a delta", 10_000)


def test_the_request_round_trips_and_a_short_one_is_refused() -> None:
    target = "ab" * 32
    assert rdiff.decode_request(rdiff.encode_request(target, 12345, b"sig")) == (target, 12345, b"sig")
    with pytest.raises(PatchError, match="SHA-256"):
        rdiff.decode_request(b"short")


def test_a_delta_that_would_grow_past_the_expected_size_is_stopped(tmp_path) -> None:
    """A few COPY commands can describe any amount of output: the result is capped at the file's size."""
    basis = tmp_path / "local"
    basis.write_bytes(b"x" * 100_000)
    huge = b"x" * 3_000_000
    delta = rdiff.delta(rdiff.signature(basis), huge)
    assert len(delta) < 100_000
    with pytest.raises(PatchError, match="larger than the 200000 bytes expected"):
        rdiff.patch(basis, delta, 200_000)
