"""A build's distinct chunk digests: sorted in one bytes object for lookups, each at a position that stays put.

A build index refers to its chunks by position, 1.6 million times at 100 GB. A set made whole (`of`) numbers its
digests in sorted order. A set made from another (`changed`: an update's chunks gone and new) keeps every remaining
digest's position and gives new digests positions past the last one, so the columns that refer to positions are
copied as they are instead of renumbered (a Python step per chunk position: 0.45 CPU s of a 100 GB update).

Positions are then the sorted order of a base (the set as last made whole) with holes where base digests went
(`_gone`, by position) and, at their sorted places, the digests added since (`_extra`, by rank in the sorted
bytes, and their positions). Both are an update's changes, small beside the set: a lookup bisects them. When they
pass a share of the set, `compacted` numbers the set in sorted order again and says how positions moved.
"""

from __future__ import annotations

import bisect
import functools
import operator
import sys
import weakref
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from itertools import compress, repeat

DIGEST = 32
_BUCKET_LOAD = 8  # digests per bucket on average: a lookup's find reads about this many
_DIGEST_TIMES = functools.partial(operator.mul, DIGEST)


class DigestSet:
    """Distinct SHA-256 digests: membership and position by a bucket table over the sorted digests."""

    def __init__(self, ordered: Sequence[bytes]) -> None:
        """`ordered`: distinct 32-byte digests in sorted order (`of` sorts them); positions are that order."""
        self._blob = b"".join(ordered)
        bits = min(24, max(0, (len(ordered) // _BUCKET_LOAD).bit_length()))
        self._shift = 32 - bits
        self._starts = array("I", (bisect.bisect_left(ordered, (b << self._shift).to_bytes(4, "big")) for b in range(1 << bits)))
        self._starts.append(len(ordered))
        self._moved(len(ordered), len(ordered), array("I"), array("I"), array("I"))

    @classmethod
    def of(cls, digests: Iterable[bytes]) -> "DigestSet":
        return cls(sorted(set(digests)))

    @classmethod
    def _stored(
        cls,
        blob: bytes,
        starts: array[int],
        base: int | None = None,
        span: int | None = None,
        gone: array[int] | None = None,
        extra: array[int] | None = None,
        extra_ids: array[int] | None = None,
    ) -> "DigestSet":
        """As a stored index kept it: the sorted digests, the bucket table (a power of two of buckets, plus one)
        and, for a set made from another, where positions differ from sorted order (none given: they do not)."""
        buckets, count = len(starts) - 1, len(blob) // DIGEST
        if len(blob) % DIGEST or buckets < 1 or buckets & (buckets - 1) or starts[-1] != count:
            raise ValueError("digest set is damaged")
        gone, extra, extra_ids = gone or array("I"), extra or array("I"), extra_ids or array("I")
        base = count if base is None else base
        span = base if span is None else span
        if (
            len(extra) != len(extra_ids)
            or base - len(gone) + len(extra) != count
            or not base <= span
            or any(a >= b for a, b in zip(gone, gone[1:]))
            or any(a >= b for a, b in zip(extra, extra[1:]))
            or (gone and gone[-1] >= base)
            or (extra and extra[-1] >= count)
            or any(not base <= i < span for i in extra_ids)
            or len(set(extra_ids)) != len(extra_ids)
        ):
            raise ValueError("digest set is damaged")
        made = cls.__new__(cls)
        made._blob, made._starts, made._shift = blob, starts, 32 - (buckets.bit_length() - 1)
        made._moved(base, span, gone, extra, extra_ids)
        return made

    def _moved(self, base: int, span: int, gone: array[int], extra: array[int], extra_ids: array[int]) -> None:
        self._base, self._span = base, span  # positions below `base` are the base's sorted order; all below `span`
        self._gone, self._extra, self._extra_ids = gone, extra, extra_ids
        self._plain = not gone and not extra  # positions are sorted order: no bisecting
        self._parent: weakref.ref[DigestSet] | None = None  # the set `changed` made this one from
        # Non-decreasing forms of the two lists, which turn a place among the base's remaining digests into a
        # position (`_gone_k`) or a rank (`_extra_k`) by one bisect each.
        self._gone_k = [g - k for k, g in enumerate(gone)]
        self._extra_k = [r - k for k, r in enumerate(extra)]
        self._extra_rank = dict(zip(extra_ids, extra))
        self._extra_rank_set = frozenset(extra)
        self._gone_list, self._extra_list = list(gone), list(extra)  # bisected in C: a list, not the array

    def __len__(self) -> int:
        return len(self._blob) // DIGEST

    def __repr__(self) -> str:
        return f"DigestSet({len(self)} digests, {len(self._starts) - 1} buckets, {self.moved} moved, span {self._span})"

    @property
    def span(self) -> int:
        """Every position is below this: arrays indexed by position are this long (holes included)."""
        return self._span

    @property
    def moved(self) -> int:
        """How far positions are from sorted order: the base's digests gone plus the digests added since."""
        return len(self._gone) + len(self._extra)

    @property
    def nbytes(self) -> int:
        lists = 8 * (len(self._gone_k) + len(self._extra_k)) + 100 * len(self._extra_rank)  # about, as Python objects
        arrays = (self._starts, self._gone, self._extra, self._extra_ids)
        return len(self._blob) + sum(a.itemsize * len(a) for a in arrays) + lists

    def __iter__(self) -> Iterator[bytes]:
        """The digests in sorted order."""
        blob = self._blob
        return (blob[k : k + DIGEST] for k in range(0, len(blob), DIGEST))

    def _rank(self, digest: bytes) -> int:
        bucket = int.from_bytes(digest[:4], "big") >> self._shift
        end = self._starts[bucket + 1] * DIGEST
        at = self._blob.find(digest, self._starts[bucket] * DIGEST, end)
        while at > 0 and at % DIGEST:  # a match across two digests (never seen in practice, but possible): look on
            at = self._blob.find(digest, at + 1, end)
        return at // DIGEST if at >= 0 else -1

    def _position_of_rank(self, rank: int) -> int:
        k = bisect.bisect_left(self._extra, rank)
        if k < len(self._extra) and self._extra[k] == rank:
            return self._extra_ids[k]
        y = rank - k  # the place among the base's remaining digests
        return y + bisect.bisect_right(self._gone_k, y)

    def _rank_of_position(self, position: int) -> int:
        if position >= self._base:
            return self._extra_rank.get(position, -1)
        j = bisect.bisect_left(self._gone, position)
        if j < len(self._gone) and self._gone[j] == position:
            return -1
        y = position - j
        return y + bisect.bisect_right(self._extra_k, y)

    def position(self, digest: bytes) -> int:
        """The digest's position, or -1 if it is not in the set."""
        rank = self._rank(digest)
        return rank if rank < 0 or self._plain else self._position_of_rank(rank)

    def __contains__(self, digest: object) -> bool:
        return isinstance(digest, bytes) and len(digest) == DIGEST and self._rank(digest) >= 0

    def positions(self, digests: bytes) -> list[int]:
        """For each 32-byte digest of `digests` (one after another), its `position` (-1: not in the set), for
        many at once in C loops (a Python step per digest was most of the time of finding 49,000)."""
        ranks = self.ranks(digests)
        if self._plain:
            return ranks
        ks = list(map(bisect.bisect_left, repeat(self._extra_list), ranks))
        ys = list(map(operator.sub, ranks, ks))
        out = list(map(operator.add, ys, map(bisect.bisect_right, repeat(self._gone_k), ys)))  # -1 stays -1
        for i in compress(range(len(out)), map(self._extra_rank_set.__contains__, ranks)):
            out[i] = self._extra_ids[ks[i]]
        return out

    def ranks(self, digests: bytes) -> list[int]:
        """For each 32-byte digest of `digests`, its place in sorted order (-1: not in the set): what membership
        needs, without turning places into positions."""
        blob, starts = self._blob, self._starts
        whole = len(digests) - len(digests) % DIGEST
        cuts = range(0, whole, DIGEST)
        parts = list(map(digests.__getitem__, map(slice, cuts, map(DIGEST.__add__, cuts))))
        heads = array("I", memoryview(digests)[:whole].cast("I")[:: DIGEST // 4].tobytes())  # each one's first 4 bytes
        if sys.byteorder == "little":
            heads.byteswap()  # read as the big-endian number the buckets are cut by
        buckets = list(map(operator.rshift, heads, repeat(self._shift)))
        lows = map(_DIGEST_TIMES, map(starts.__getitem__, buckets))
        highs = map(_DIGEST_TIMES, map(starts.__getitem__, map((1).__add__, buckets)))
        found = list(map(blob.find, parts, lows, highs))
        if any(map(operator.mod, filter((0).__lt__, found), repeat(DIGEST))):  # a match across two digests
            found = [at if at < 0 or at % DIGEST == 0 else self._rank(parts[k]) * DIGEST for k, at in enumerate(found)]
        return list(map(operator.floordiv, found, repeat(DIGEST)))  # -1 stays -1

    def digest(self, position: int) -> bytes:
        """The digest at a position of the set (b"" at a hole)."""
        rank = position if self._plain else self._rank_of_position(position)
        return self._blob[rank * DIGEST : (rank + 1) * DIGEST] if rank >= 0 else b""

    def digests_at(self, positions: Sequence[int]) -> bytes:
        """The digests at these positions (each one the set has), one after another, in C loops: a Python call per
        digest was most of the time of making a 1 GiB file's entry."""
        ranks: Iterable[int] = positions
        if not self._plain:
            ys = list(map(operator.sub, positions, map(bisect.bisect_left, repeat(self._gone_list), positions)))
            ranked = list(map(operator.add, ys, map(bisect.bisect_right, repeat(self._extra_k), ys)))
            for i in compress(range(len(ranked)), map(self._base.__le__, positions)):  # added since the base
                ranked[i] = self._extra_rank[positions[i]]
            ranks = ranked
        at = list(map(_DIGEST_TIMES, ranks))
        return b"".join(map(self._blob.__getitem__, map(slice, at, map(DIGEST.__add__, at))))

    def changed(self, dropped: Sequence[int], fresh: Sequence[bytes]) -> tuple["DigestSet", dict[bytes, int]]:
        """The set without the digests at the `dropped` positions and with the `fresh` digests (sorted; none of them
        in the set): made of slices of this one, every remaining digest at its position, and each fresh digest's
        position (past every position this set has given)."""
        blob, starts, shift = self._blob, self._starts, self._shift
        gone_ranks = sorted(map(self._rank_of_position, dropped))
        slices = _Slices(blob)
        fresh_at = []  # each fresh digest's rank in this set: it goes before the digest there
        for digest in fresh:
            bucket = int.from_bytes(digest[:4], "big") >> shift
            fresh_at.append(bisect.bisect_left(slices, digest, starts[bucket], starts[bucket + 1]))
        # The sorted digests, made of slices between the places where one goes or comes (views: copied once).
        view = memoryview(blob)
        pieces: list[bytes | memoryview] = []
        moves: Counter[int] = Counter()  # per bucket, digests gained minus lost in it
        cursor = 0
        for at, leaving, digest in sorted([(r, 1, b"") for r in gone_ranks] + [(a, 0, d) for a, d in zip(fresh_at, fresh)]):
            pieces.append(view[cursor * DIGEST : at * DIGEST])
            cursor = at
            if leaving:
                moves[int.from_bytes(blob[at * DIGEST : at * DIGEST + 4], "big") >> shift] -= 1
                cursor += 1
            else:
                pieces.append(digest)
                moves[int.from_bytes(digest[:4], "big") >> shift] += 1
        pieces.append(view[cursor * DIGEST :])
        # Each bucket starts later by what the buckets before it gained: constant between two changed buckets.
        new_starts, total, low = array("I", starts), 0, 0
        for bucket in sorted(moves):
            if total:
                new_starts[low : bucket + 1] = array("I", map(total.__add__, starts[low : bucket + 1]))
            total, low = total + moves[bucket], bucket + 1
        if total:
            new_starts[low:] = array("I", map(total.__add__, starts[low:]))

        def new_rank(rank: int) -> int:  # of a digest that stays
            return rank + bisect.bisect_right(fresh_at, rank) - bisect.bisect_left(gone_ranks, rank)

        dropped_set = set(dropped)
        gone = array("I", sorted([*self._gone, *(p for p in dropped if p < self._base)]))
        placed = [(new_rank(r), i) for r, i in zip(self._extra, self._extra_ids) if i not in dropped_set]
        added = {d: self._span + m for m, d in enumerate(fresh)}
        placed += [(a - bisect.bisect_left(gone_ranks, a) + m, self._span + m) for m, a in enumerate(fresh_at)]
        placed.sort()
        made = DigestSet._stored(
            b"".join(pieces),
            new_starts,
            self._base,
            self._span + len(fresh),
            gone,
            array("I", (r for r, _ in placed)),
            array("I", (i for _, i in placed)),
        )
        made._parent = weakref.ref(self)
        return made, added

    def follows(self, other: "DigestSet") -> bool:
        """Whether `changed` made this set from `other` (in this process): then a position both hold names the same
        digest in both (a position is never given twice). Not so for two sets made from the same one."""
        return self._parent is not None and self._parent() is other

    def compacted(self) -> tuple["DigestSet", array[int], array[int]]:
        """The same digests numbered in sorted order again; each old position's new one (`remap`, 0 at a hole) and
        each new position's old one (`order`)."""
        remap, order = array("I", bytes(4 * self._span)), array("I", bytes(4 * len(self)))
        remaining = self._base - len(self._gone)
        points = sorted({0, remaining, *self._gone_k, *self._extra_k})
        for a, b in zip(points, points[1:]):  # between two points both position and rank step by one
            if a < b:
                g, e = bisect.bisect_right(self._gone_k, a), bisect.bisect_right(self._extra_k, a)
                remap[a + g : b + g] = array("I", range(a + e, b + e))
                order[a + e : b + e] = array("I", range(a + g, b + g))
        for rank, position in zip(self._extra, self._extra_ids):
            remap[position], order[rank] = rank, position
        return DigestSet._stored(self._blob, self._starts), remap, order


class _Slices:
    """The digests of a sorted blob as a sequence bisect can search."""

    def __init__(self, blob: bytes) -> None:
        self._blob = blob

    def __len__(self) -> int:
        return len(self._blob) // DIGEST

    def __getitem__(self, i: int) -> bytes:
        return self._blob[i * DIGEST : (i + 1) * DIGEST]
