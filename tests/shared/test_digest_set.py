"""A digest set made from another keeps every remaining digest at its position through any run of changes, answers
every lookup as a set made whole would (by digest), and numbered again in sorted order it says how positions moved."""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given, settings, strategies as st

from shared.digest_set import DigestSet

pytestmark = pytest.mark.same_on_every_backend  # pure: bytes in, values out


def _digest(n: int) -> bytes:
    return hashlib.sha256(b"%d" % n).digest()


def _answers_as_the_model(made: DigestSet, model: dict[int, bytes]) -> None:
    """`model`: position -> digest of every digest the set should hold."""
    assert len(made) == len(model) and sorted(model.values()) == list(made)
    assert all(p < made.span for p in model)
    assert all(made.position(d) == p and d in made for p, d in model.items())
    ordered = sorted(model)
    assert made.digests_at(ordered) == b"".join(model[p] for p in ordered)
    assert all(made.digest(p) == model[p] for p in ordered)
    asked = [model[p] for p in ordered] + [_digest(-1), b"\xff" * 32]
    assert made.positions(b"".join(asked)) == ordered + [-1, -1]
    ranks = made.ranks(b"".join(asked))
    assert ranks[-2:] == [-1, -1] and sorted(ranks[:-2]) == list(range(len(model)))
    holes = set(range(made.span)) - set(model)
    assert all(made.digest(p) == b"" for p in holes)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 60), st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12)), max_size=6), st.randoms())
def test_positions_stay_put_through_changes_and_compaction_renumbers_them_in_sorted_order(
    start: int, steps: list[tuple[int, int]], rng: random.Random
) -> None:
    made = DigestSet.of(_digest(n) for n in range(start))
    model = {made.position(_digest(n)): _digest(n) for n in range(start)}
    assert sorted(model) == list(range(start)), "a set made whole is numbered in sorted order"
    fresh_numbers = iter(range(1000, 2000))
    for drops, adds in steps:
        dropped = sorted(rng.sample(sorted(model), min(drops, len(model))))
        fresh = sorted(_digest(next(fresh_numbers)) for _ in range(adds))
        span = made.span
        made, added = made.changed(dropped, fresh)
        for p in dropped:
            del model[p]
        assert sorted(added.values()) == list(range(span, span + adds)), "new digests come past every position given"
        model.update({p: d for d, p in added.items()})
        _answers_as_the_model(made, model)
    compact, remap, order = made.compacted()
    assert compact.moved == 0 and compact.span == len(compact)
    assert all(compact.position(d) == remap[p] for p, d in model.items())
    assert all(order[remap[p]] == p for p in model)
    _answers_as_the_model(compact, {remap[p]: d for p, d in model.items()})


def test_a_digest_spanning_two_stored_ones_is_not_found_among_moved_positions_either() -> None:
    first, second = b"\x00" * 16 + b"\x01" * 16, b"\x01" * 16 + b"\x02" * 16
    spanning = b"\x01" * 32  # the second half of one and the first half of the next
    plain = DigestSet.of([second, first])
    moved, added = plain.changed([0], [b"\x00" * 32])
    assert moved.moved == 2 and added == {b"\x00" * 32: 2}
    for digests in (plain, moved):
        assert digests.positions(spanning + second + first)[0] == -1 and spanning not in digests
    assert moved.positions(second + b"\x00" * 32 + first) == [1, 2, -1]


def test_crowded_buckets_and_many_changes_answer_as_the_model() -> None:
    rng = random.Random(7)
    crowd = [b"\x00\x00" + rng.randbytes(30) for _ in range(300)] + [rng.randbytes(32) for _ in range(3000)]
    made = DigestSet.of(crowd)
    model = {made.position(d): d for d in crowd}
    for _ in range(5):
        dropped = sorted(rng.sample(sorted(model), 200))
        fresh = sorted({b"\x00\x00" + rng.randbytes(30) for _ in range(50)} | {rng.randbytes(32) for _ in range(150)})
        made, added = made.changed(dropped, fresh)
        for p in dropped:
            del model[p]
        model.update({p: d for d, p in added.items()})
    assert made.moved > 1000
    _answers_as_the_model(made, model)
