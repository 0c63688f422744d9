"""Before a build is committed: do its files' chunks make the files its manifest names?

The seeder checks each chunk against its own name at upload, but a manifest
could still pair a file's SHA-256 with chunks that make another content
(a bug in a pushing tool, or a hostile admin token); every client would then
refuse the file after downloading it. So the tracker rebuilds, chunk by
chunk, each file content no committed build of the game had, and refuses the
build naming the files that do not match. Contents the game's latest build
had were checked when it was committed.

And are its chunks in the store? Only those the previous build does not
vouch for are looked at (`Manifest.chunks_beyond`): a 100 GB build with 1 GB
changed checks 1% of its chunks, not 1.6 million. A chunk of the previous
build is in the store because that build was committed with it, the garbage
collector keeps every chunk of a build in the catalog (the commit holds the
previous build's row until the new one is in: add_build(vouched_by=...)), and the
one other way a stored chunk goes, the scrub's (or a patch job's) quarantine,
is listed and checked chunk by chunk.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

from shared import compression
from shared.chunkstore import ChunkStore
from shared.manifest import Manifest


def mismatched_files(store: ChunkStore, manifest: Manifest, known: Iterable[str]) -> list[str]:
    """Paths of the files whose chunks (as stored) do not hash to the file's SHA-256; each new content read once."""
    checked = set(known)
    bad: list[str] = []
    for entry in manifest.files:
        if entry.sha256 in checked:
            continue
        digest = hashlib.sha256()
        for ref in entry.chunks:
            digest.update(compression.decompress(store.get(ref.sha256), ref.size, ref.sha256))
        if digest.hexdigest() != entry.sha256:
            bad.append(entry.path)
        else:
            checked.add(entry.sha256)
    return bad


def set_aside(store: ChunkStore, chunks: Mapping[str, int]) -> list[str]:
    """The build's chunks that the store has ever quarantined: each may still be missing, whoever vouched for it."""
    return [name for name in store.quarantined() if name in chunks]
