"""A build's stored chunk sizes kept compactly read as the dict they were made from, one by one and all at once."""

from __future__ import annotations

import hashlib
import random

import pytest

from tracker.stored_sizes import StoredSizes, total

pytestmark = pytest.mark.same_on_every_backend  # pure: no database or store


def _sizes(n: int, seed: int = 1) -> dict[str, int]:
    rng = random.Random(seed)
    return {hashlib.sha256(f"{seed}/{i}".encode()).hexdigest(): rng.randrange(1, 1 << 20) for i in range(n)}


@pytest.mark.parametrize("n", [0, 1, 7, 5000])
def test_compact_sizes_read_as_the_dict_they_were_made_from(n: int) -> None:
    sizes = _sizes(n)
    kept = StoredSizes(sizes)
    assert len(kept) == n and dict(kept) == sizes and set(kept) == set(sizes)
    assert all(kept[h] == s for h, s in sizes.items())
    assert kept.total == total(kept) == total(sizes) == sum(sizes.values())
    other = list(_sizes(50, seed=2))
    assert kept.many([*sizes, *other]) == [*sizes.values(), *[0] * 50]
    for absent in [*other[:3], "not hex", "ab" * 31, *[h.upper() for h in list(sizes)[:1]]]:
        assert absent not in kept and kept.get(absent) is None
        with pytest.raises(KeyError):
            kept[absent]
    assert StoredSizes.of(kept) is kept and StoredSizes.of(sizes) == kept
