"""Turning a build folder into a manifest: walk it, refuse what a build cannot hold, chunk every file.

Symbolic links inside the folder are carried as links when they resolve
inside the build (`lib/libfoo.so.1 -> libfoo.so.1.2`); any that is absolute,
points outside or dangles is refused, all of them named at once.
"""

from __future__ import annotations

import os
import posixpath
import stat
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from shared.wording import count
from mistpipe.errors import BuildFolderError
from mistpipe.scancache import ScanCache, Signature, signature, unpack_refs
from shared.chunking import DEFAULT_PARAMS, ChunkedFile, ChunkingParams, chunk_file
from shared.errors import ManifestError
from shared.links import LinkEntry, validate_links
from shared.manifest import FileEntry, Manifest
from shared.paths import validate_tree


@dataclass(frozen=True)
class Folder:
    """What a build folder holds: regular files as (relative POSIX path, absolute path, executable), and links."""

    files: list[tuple[str, Path, bool]]
    links: list[LinkEntry]


def walk(root: Path) -> Folder:
    """Every regular file and symbolic link under `root` (links are not followed)."""
    if not root.is_dir():
        raise BuildFolderError(f"{root} is not a folder; give the folder that holds the build")
    files, links, odd = [], [], []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            full = Path(dirpath) / name
            st = full.lstat()
            rel = full.relative_to(root).as_posix()
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(full).replace(os.sep, "/")
                links.append(LinkEntry(rel, target if target.startswith("/") else posixpath.normpath(target)))
            elif stat.S_ISREG(st.st_mode):
                files.append((rel, full, bool(st.st_mode & 0o111)))
            elif not stat.S_ISDIR(st.st_mode):
                odd.append(rel)
    if odd:
        raise BuildFolderError(
            f"{count(len(odd), 'item')} in the folder {'is' if len(odd) == 1 else 'are'} neither a file, a folder nor a link (first: {odd[0]}); "
            "remove them from the build folder"
        )
    return Folder(sorted(files), sorted(links, key=lambda e: e.path))


def check(folder: Folder) -> None:
    """Refuse names a build cannot hold and links that leave it, saying what to change in the folder."""
    try:
        validate_tree(rel for rel, _, _ in folder.files)
        if folder.links:
            validate_links((rel for rel, _, _ in folder.files), folder.links)
    except ManifestError as exc:
        message = str(exc).replace("the build was rejected", "change them in the build folder before pushing")
        raise BuildFolderError(message) from exc


@dataclass(frozen=True)
class Scanned:
    """A scan's manifest and how much of the folder it had to read (the rest came from the push cache)."""

    manifest: Manifest
    files_read: int
    bytes_read: int


def scan(root: Path, game: str, version: str, params: ChunkingParams = DEFAULT_PARAMS, threads: int = 2) -> Manifest:
    """Chunk every file of the folder (in parallel: hashing releases the GIL) into a manifest."""
    return scan_cached(root, game, version, None, params=params, threads=threads).manifest


def scan_cached(
    root: Path,
    game: str,
    version: str,
    cache: ScanCache | None,
    rescan: bool = False,
    params: ChunkingParams = DEFAULT_PARAMS,
    threads: int = 2,
) -> Scanned:
    """Like `scan`, reading only the files whose signature the cache does not hold (all of them if `rescan`)."""
    folder = walk(root)
    check(folder)
    known = cache.known(root, params) if cache is not None and not rescan else {}
    chunked: list[ChunkedFile | None] = []
    todo: list[tuple[int, Path, Signature]] = []
    for i, (rel, full, _) in enumerate(folder.files):
        sig = signature(full.stat())
        held = known.get(rel)
        if held is not None and held[0] == sig:
            chunked.append(ChunkedFile(sig[0], held[1], unpack_refs(held[2])))
        else:
            chunked.append(None)
            todo.append((i, full, sig))

    def read(item: tuple[int, Path, Signature]) -> tuple[ChunkedFile, Signature]:
        full = item[1]
        result = chunk_file(full, params)
        return result, signature(full.stat())

    fresh = []
    with ThreadPoolExecutor(threads) as pool:
        for (i, _, before), (result, after) in zip(todo, pool.map(read, todo)):
            chunked[i] = result
            if before == after:  # a file that changed while it was read is chunked again next time
                fresh.append((folder.files[i][0], after, result))
    done = [c for c in chunked if c is not None]
    assert len(done) == len(folder.files), "every file is either known or read"
    if cache is not None:
        cache.remember(root, params, fresh, (rel for rel, _, _ in folder.files))
    entries = tuple(FileEntry(rel, c.size, executable, c.sha256, c.chunks) for (rel, _, executable), c in zip(folder.files, done))
    manifest = Manifest(game, version, params, entries, tuple(folder.links))
    return Scanned(manifest, len(todo), sum(sig[0] for _, _, sig in todo))
