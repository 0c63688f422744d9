"""The update plan on the wire, defined once: what the tracker's planner answers (tracker/planner.py) and the
client reads (client/plan.py) for each file it must write.

    {"files": [{"path": "...", "source": "chunks" | "patch" | "bundle", "bytes": N, "chunk_bytes": N, "file_bytes": N,
                "patch": {"object": SHA256, "from": SHA256, "size": N, "stored_size": N, "algorithm": "..."},
                "bundle": SHA256}],
     "bundles": [{"object": SHA256, "size": N, "stored_size": N, "files": [{"from": SHA256, "to": SHA256}]}],
     "bytes": {"chunks": N, "patch": N}, "coming": [{"path": "...", "job": "..."}], ...}

A "bundle" route (and "bundles") goes only to a client whose plan request said `"bundles": true`; the bundle's
stored bytes are counted on the first of its files the plan names, 0 on the others.

The plan is not signed, and a patch's object name becomes a file name on the friend's disk, so reading an
offer accepts only SHA-256 names and a size one pack record can carry; an entry that does not read is
fetched by chunks instead (the client's rule, in `client/plan.py` `parse_routes`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from shared.manifest import VERSION_RE
from shared.pack import MAX_RECORD

CHUNKS = "chunks"
PATCH = "patch"
BUNDLE = "bundle"  # made with other files by one patch bundle (shared/patch_bundle.py); only to clients that ask
MAX_STEPS = 4  # patches applied in turn for one file (a chain A -> B -> C)
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
    target: str = ""  # the content it makes ("" when the tracker did not say: then the file's own)
    build: str = ""  # a chain's intermediate step: the version of the game's build it is fetched under

    def to_json(self) -> dict[str, Json]:
        out: dict[str, Json] = {
            "object": self.object,
            "from": self.source,
            "size": self.size,
            "stored_size": self.stored_size,
            "algorithm": self.algorithm,
        }
        if self.target:
            out["to"] = self.target
        if self.build:
            out["build"] = self.build
        return out

    @classmethod
    def from_json(cls, offer: Mapping[str, Json]) -> PatchOffer | None:
        """The offer, or None if its names are not SHA-256s or its size is out of range; KeyError, TypeError or
        ValueError if it is not an offer at all."""
        made = cls(
            str(offer["object"]),
            str(offer["from"]),
            _int((offer["size"])),
            _int((offer["stored_size"])),
            str(offer["algorithm"]),
            str(offer.get("to", "")),
            str(offer.get("build", "")),
        )
        if not (_SHA256.match(made.object) and _SHA256.match(made.source) and 0 < made.size <= MAX_RECORD):
            return None
        if (made.target and not _SHA256.match(made.target)) or (made.build and not VERSION_RE.match(made.build)):
            return None  # the version becomes part of a URL
        return made


def _chain(first: PatchOffer, listed: object) -> tuple[PatchOffer, ...] | None:
    """The later steps of a chain whose first step is `first`; None when the chain does not hold together."""
    if listed is None:
        return ()
    if not isinstance(listed, list) or not 2 <= len(listed) <= MAX_STEPS:
        return None
    steps = [PatchOffer.from_json(step) if isinstance(step, Mapping) else None for step in listed]
    if steps[0] != first or any(s is None for s in steps):
        return None
    refs = [s for s in steps if s is not None]
    if any(not a.target or a.target != b.source for a, b in zip(refs, refs[1:])):
        return None
    return tuple(refs[1:])


@dataclass(frozen=True)
class BundleOffer:
    """A stored patch bundle: fetch `size` bytes named `object`; it makes each `members` target from its source,
    all of which the client must hold."""

    object: str
    size: int
    stored_size: int
    members: tuple[tuple[str, str], ...]  # (source content, target content), in the bundle's order

    def to_json(self) -> dict[str, Json]:
        return {
            "object": self.object,
            "size": self.size,
            "stored_size": self.stored_size,
            "files": [{"from": s, "to": t} for s, t in self.members],
        }

    @classmethod
    def from_json(cls, offer: Mapping[str, Json]) -> BundleOffer | None:
        """The offer, or None if a name is not a SHA-256 or its size is out of range; KeyError, TypeError or
        ValueError if it is not an offer at all."""
        files = offer["files"]
        if not isinstance(files, list):
            raise TypeError("a bundle's files must be a list")
        members = tuple((str(f["from"]), str(f["to"])) for f in files)
        made = cls(str(offer["object"]), _int(offer["size"]), _int(offer["stored_size"]), members)
        names = [made.object] + [n for pair in members for n in pair]
        if not members or not all(_SHA256.match(n) for n in names) or not 0 < made.size <= MAX_RECORD:
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
    then: tuple[PatchOffer, ...] = ()  # a chain's later steps, each applied to what the one before made
    bundle: str = ""  # with BUNDLE: the object name of the bundle (the plan's "bundles") that makes this file

    @property
    def steps(self) -> tuple[PatchOffer, ...]:
        return ((self.patch,) + self.then) if self.patch else ()

    def to_json(self, path: str) -> dict[str, object]:
        out: dict[str, object] = {
            "path": path,
            "source": self.source,
            "bytes": self.bytes,
            "chunk_bytes": self.chunk_bytes,
            "file_bytes": self.file_bytes,
        }
        if self.patch:
            out["patch"] = self.patch.to_json()
            if self.then:
                out["chain"] = [s.to_json() for s in self.steps]
        if self.bundle:
            out["bundle"] = self.bundle
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
        then = _chain(patch, item.get("chain")) if patch else ()
        if then is None:
            patch, then = None, ()
        chunk_bytes = _int((item["chunk_bytes"]))
        bundle = item.get("bundle")
        if item["source"] == BUNDLE and isinstance(bundle, str) and _SHA256.match(bundle):
            return path, cls(BUNDLE, _int(item["bytes"]), chunk_bytes, _int(item.get("file_bytes", 0)), bundle=bundle)
        moved = _int((item["bytes"])) if patch else chunk_bytes
        return path, cls(PATCH if patch else CHUNKS, moved, chunk_bytes, _int((item.get("file_bytes", 0))), patch, then or ())
