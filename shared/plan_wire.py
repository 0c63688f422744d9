"""The update plan on the wire, defined once: what the tracker's planner answers (tracker/planner.py) and the
client reads (client/plan.py) for each file it must write.

    {"files": [{"path": "...", "source": "chunks" | "patch", "bytes": N, "chunk_bytes": N, "file_bytes": N,
                "patch": {"object": SHA256, "from": SHA256, "size": N, "stored_size": N, "algorithm": "..."}}],
     "bytes": {"chunks": N, "patch": N}, "coming": [{"path": "...", "job": "..."}], ...}

The plan is not signed, and a patch's object name becomes a file name on the friend's disk, so reading an
offer accepts only SHA-256 names and a size one pack record can carry; an entry that does not read is
fetched by chunks instead (the client's rule, in `client/plan.py` `parse_routes`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from shared.pack import MAX_RECORD

CHUNKS = "chunks"
PATCH = "patch"
_SHA256 = re.compile(r"^[0-9a-f]{64}\Z")
Json = object  # a JSON value (PatchOffer has a field named `object`, which would shadow it in the class)


def _int(value: object) -> int:
    """int() as JSON's numbers (and numeric strings) allow it; TypeError for anything else."""
    if isinstance(value, (int, float, str)):
        return int(value)
    raise TypeError(f"not a number: {value!r}")


@dataclass(frozen=True)
class PatchOffer:
    """A stored patch object: fetch `size` bytes (uncompressed) named `object`, apply them to file content `source`."""

    object: str
    source: str
    size: int
    stored_size: int
    algorithm: str

    def to_json(self) -> dict[str, Json]:
        return {"object": self.object, "from": self.source, "size": self.size, "stored_size": self.stored_size,
                "algorithm": self.algorithm}

    @classmethod
    def from_json(cls, offer: Mapping[str, Json]) -> PatchOffer | None:
        """The offer, or None if its names are not SHA-256s or its size is out of range; KeyError, TypeError or
        ValueError if it is not an offer at all."""
        made = cls(str(offer["object"]), str(offer["from"]), _int((offer["size"])), _int((offer["stored_size"])),
                   str(offer["algorithm"]))
        if not (_SHA256.match(made.object) and _SHA256.match(made.source) and 0 < made.size <= MAX_RECORD):
            return None
        return made


@dataclass(frozen=True)
class Route:
    """How one file of the target is to be made, and the stored bytes each way would move."""

    source: str  # CHUNKS or PATCH
    bytes: int  # what the chosen way moves
    chunk_bytes: int  # stored bytes of the chunks the client lacks for this file (0: all on disk)
    file_bytes: int = 0  # stored bytes of all the file's chunks (what a client holding none of them would fetch)
    patch: PatchOffer | None = None

    def to_json(self, path: str) -> dict[str, object]:
        out: dict[str, object] = {"path": path, "source": self.source, "bytes": self.bytes,
                                  "chunk_bytes": self.chunk_bytes, "file_bytes": self.file_bytes}
        if self.patch:
            out["patch"] = self.patch.to_json()
        return out

    @classmethod
    def from_json(cls, item: Mapping[str, object]) -> tuple[str, Route]:
        """(path, route) of one entry of "files"; a patch offer that does not read makes it a chunks route.
        KeyError, TypeError, ValueError or OverflowError (JSON's Infinity) if the entry is not one."""
        path = item["path"]
        if not isinstance(path, str):
            raise TypeError("a file's path must be a string")
        offer = item.get("patch")
        patch = PatchOffer.from_json(offer) if item["source"] == PATCH and isinstance(offer, Mapping) else None
        chunk_bytes = _int((item["chunk_bytes"]))
        moved = _int((item["bytes"])) if patch else chunk_bytes
        return path, cls(PATCH if patch else CHUNKS, moved, chunk_bytes, _int((item.get("file_bytes", 0))), patch)
