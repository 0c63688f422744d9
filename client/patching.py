"""Making staged files from patches: fetched patch objects or an rdiff delta applied to a local file.

Blocking file work, run in threads. The result is written to the file's
staging name and checked like every staged file (SHA-256 of the whole file
against the signed manifest) before it can be swapped in; a patch that fails
anywhere raises, and the caller fetches that file by chunks instead. A chain
of patches (A -> B -> C) is applied in memory one step at a time, and each
intermediate content is checked against the SHA-256 and size the step names
before the next step touches it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

from client import staging
from client.journal import MIST_DIR
from client.plan import PatchRef
from shared import compression, patch, patch_bundle, rawfile, rdiff
from shared.errors import PatchError
from shared.manifest import FileEntry

PATCHES = "patches"


def patch_path(root: Path, name: str) -> Path:
    return root / MIST_DIR / PATCHES / name


def make_room(root: Path, name: str, size: int) -> bool:
    """Create the file a patch object is fetched into; True if a verified copy is already there (a resume)."""
    path = patch_path(root, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file() and path.stat().st_size == size and staging.file_sha256(path) == name:
        return True
    with open(path, "wb") as f:
        f.truncate(size)
    return False


def _write_staged(root: Path, entry: FileEntry, data: bytes) -> None:
    path = staging.staged_path(root, entry)
    fd = rawfile.open_fd(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    staging.finish(root, entry, hash_whole=True)


def _object(root: Path, name: str) -> bytes:
    obj = patch_path(root, name).read_bytes()
    if hashlib.sha256(obj).hexdigest() != name:
        raise PatchError(f"patch object {name[:12]} on disk is damaged")
    return obj


def apply_chain(root: Path, entry: FileEntry, steps: tuple[PatchRef, ...], source: Path) -> None:
    """Stage `entry` by applying the fetched patch objects of `steps` in turn, starting from the local file `source`.

    Each step must make the content the next one starts from: `patch.apply` hashes what it made against the
    object's header, and the header must name the step's declared target (and, on the last, the manifest's
    file, size included). Nothing is staged unless the whole chain holds.
    """
    if not steps:
        raise PatchError("an empty chain of patches makes nothing")
    data = source.read_bytes()
    for number, step in enumerate(steps, start=1):
        obj = _object(root, step.object)
        last = number == len(steps)
        made = patch.read_header(obj)
        expected = entry.sha256 if last else step.target
        if made.target != expected or made.source != step.source:
            raise PatchError(
                f"step {number} of {len(steps)} of the chain to {entry.path} goes from {made.source[:12]} "
                f"to {made.target[:12]}, not from {step.source[:12]} to {expected[:12]}"
            )
        data = patch.apply(obj, data, (entry.sha256, entry.size) if last else (made.target, made.target_size))
    _write_staged(root, entry, data)


def apply_bundle(root: Path, name: str, holders: Mapping[str, Path], wanted: Mapping[str, list[FileEntry]]) -> list[FileEntry]:
    """Stage the files of `wanted` (by content) that the fetched patch bundle `name` makes, reading the old files it
    lists from `holders` (content -> local file). Every content it makes is checked against its listing, and each
    staged file against the signed manifest; nothing is staged if any of that fails."""
    obj = _object(root, name)
    members = patch_bundle.read_members(obj[: patch_bundle.listing_size(patch_bundle.read_count(obj))])
    missing = next((m.source for m in members if m.source not in holders), None)
    if missing is not None:
        raise PatchError(f"patch bundle {name[:12]} starts from {missing[:12]}, which no file here holds")
    made = patch_bundle.apply(obj, [holders[m.source].read_bytes() for m in members])
    out = [(entry, data) for member, data in zip(members, made) for entry in wanted.get(member.target, [])]
    wrong = next((e for e, data in out if len(data) != e.size), None)
    if wrong is not None:
        raise PatchError(f"patch bundle {name[:12]} makes {wrong.path} in another size than the manifest's")
    for entry, data in out:
        _write_staged(root, entry, data)
    return [entry for entry, _ in out]


def apply_delta(root: Path, entry: FileEntry, basis: Path, stored_delta: bytes | bytearray) -> int:
    """Stage `entry` from an rdiff delta (as the seeder sends it, compressed) against the local file `basis`."""
    size = compression.content_size(memoryview(stored_delta))
    if size < 0 or size > max_delta_size(entry.size):
        raise PatchError(f"the seeder's delta declares {size} bytes, more than any delta to a {entry.size}-byte file")
    delta = compression.decompress(memoryview(stored_delta), size, "rdiff delta")
    _write_staged(root, entry, rdiff.patch(basis, delta, entry.size))
    return size


def max_delta_size(file_size: int) -> int:
    """An rdiff delta is the file's new bytes as literals plus a few bytes per command: never much more."""
    return file_size + file_size // 64 + 4096
