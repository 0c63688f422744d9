"""Every chunk's stored size for one build, kept compactly while the tracker remembers it.

The commit works out each chunk's stored (compressed) size, and the announcer keeps them for the builds of
late: to size the news for each friend and so that the next push asks the store only about the chunks the
build before it did not have. As a dict, a 100 GB build's 1.55 million sizes were ~250 MB of Python objects,
and eight were kept; here they are its sorted digests in one bytes object and the sizes in an array, 36
bytes a chunk (56 MB), read through the `Mapping` the planner and the commit already take.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Mapping

from shared.build_index import DIGEST, DigestSet


class StoredSizes(Mapping[str, int]):
    """Chunk SHA-256 (hex) -> stored size, for the chunks of one build."""

    def __init__(self, sizes: Mapping[str, int]) -> None:
        ordered = sorted(sizes)  # hex digests sort as their bytes do
        blob = bytes.fromhex("".join(ordered))
        self._chunks = DigestSet([blob[at : at + DIGEST] for at in range(0, len(blob), DIGEST)])
        self._sizes = array("I", map(sizes.__getitem__, ordered))  # a stored chunk is far below 4 GB
        self.total = sum(self._sizes)

    @classmethod
    def of(cls, sizes: Mapping[str, int]) -> "StoredSizes":
        return sizes if isinstance(sizes, StoredSizes) else cls(sizes)

    def __repr__(self) -> str:
        return f"StoredSizes({len(self)} chunks, {self.total} bytes)"

    @property
    def nbytes(self) -> int:
        return self._chunks.nbytes + self._sizes.itemsize * len(self._sizes)

    def __getitem__(self, sha256: str) -> int:
        try:
            raw = bytes.fromhex(sha256)
        except (TypeError, ValueError):
            raise KeyError(sha256) from None
        at = self._chunks.position(raw) if len(raw) == DIGEST and raw.hex() == sha256 else -1  # as the dict: lower case
        if at < 0:
            raise KeyError(sha256)
        return self._sizes[at]

    def many(self, sha256s: list[str]) -> list[int]:
        """Each chunk's stored size, 0 for one not kept: for a whole build at once (one hex decode for all)."""
        sizes = self._sizes
        return [sizes[at] if at >= 0 else 0 for at in self._chunks.positions(bytes.fromhex("".join(sha256s)))]

    def __iter__(self) -> Iterator[str]:
        for at in range(len(self._sizes)):
            yield self._chunks.digest(at).hex()

    def __len__(self) -> int:
        return len(self._sizes)


def total(sizes: Mapping[str, int]) -> int:
    """The stored bytes of them all, without a Python call per chunk when they are kept compactly."""
    return sizes.total if isinstance(sizes, StoredSizes) else sum(sizes.values())
