"""Patch bundles: several files patched as one stream round-trip, beat their separate patches, and refuse anything
that is not exactly what they list."""

from __future__ import annotations

import random
import struct

import pytest

from shared import patch, patch_bundle
from shared.errors import PatchError


def small_files(count: int = 12, seed: int = 5) -> list[tuple[bytes, bytes]]:
    """Small text-like files of one build that share vocabulary, each changed a little in the next."""
    rng = random.Random(seed)
    words = [rng.randbytes(rng.randrange(3, 9)).hex().encode() for _ in range(300)]
    pairs = []
    for _ in range(count):
        old = b" ".join(rng.choice(words) for _ in range(1500))
        new = old.replace(rng.choice(words), b"renamed_symbol") + b"\nversion 2\n"
        pairs.append((old, new))
    return pairs


def test_a_bundle_makes_every_member_and_costs_less_than_their_separate_patches() -> None:
    pairs = small_files()
    obj = patch_bundle.make(pairs)
    assert patch_bundle.apply(obj, [old for old, _ in pairs]) == [new for _, new in pairs]
    members = patch_bundle.read_members(obj[: patch_bundle.listing_size(len(pairs))])
    assert [(m.source_size, m.target_size) for m in members] == [(len(o), len(n)) for o, n in pairs]
    separate = sum(len(patch.make(old, new)) for old, new in pairs)
    assert len(obj) < separate, (len(obj), separate)


def test_a_bundle_refuses_other_sources_and_damage() -> None:
    pairs = small_files(4)
    obj = patch_bundle.make(pairs)
    olds = [old for old, _ in pairs]
    with pytest.raises(PatchError, match="starts from"):
        patch_bundle.apply(obj, olds[::-1])
    with pytest.raises(PatchError, match="4 files, 3 given"):
        patch_bundle.apply(obj, olds[:3])
    listing = patch_bundle.listing_size(4)
    damaged = bytearray(obj)
    damaged[listing + 40 :] = bytes(len(damaged) - listing - 40)  # the delta zeroed past its header
    with pytest.raises(PatchError):
        patch_bundle.apply(bytes(damaged), olds)
    lying = bytearray(obj)
    lying[patch_bundle.START_SIZE + 40] ^= 0xFF  # the first member's target SHA-256
    with pytest.raises(PatchError, match="not"):
        patch_bundle.apply(bytes(lying), olds)


@pytest.mark.parametrize("prefix, why", [
    (b"MISTBND", "shorter than its header"),
    (b"MISTPTCH" + bytes(5), "not a Mist patch bundle"),
    (struct.pack(">8sBI", b"MISTBNDL", 2, 1), "not a Mist patch bundle"),
    (struct.pack(">8sBI", b"MISTBNDL", 1, 0), "holds 1 to"),
    (struct.pack(">8sBI", b"MISTBNDL", 1, 5000), "holds 1 to"),
    (struct.pack(">8sBI", b"MISTBNDL", 1, 2) + bytes(80), "shorter than its listing"),
    (struct.pack(">8sBI", b"MISTBNDL", 1, 1) + struct.pack(">32sQ32sQ", bytes(32), 1, bytes(32), 1 << 40),
     "more than"),
])
def test_a_listing_that_does_not_read_is_refused_before_anything_is_allocated(prefix: bytes, why: str) -> None:
    with pytest.raises(PatchError, match=why):
        patch_bundle.read_members(prefix)
    assert patch_bundle.is_bundle(prefix) == prefix.startswith(b"MISTBNDL")
