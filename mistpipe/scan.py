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
from shared.chunking import DEFAULT_PARAMS, ChunkingParams, chunk_file
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
        raise BuildFolderError(f"{count(len(odd), 'item')} in the folder {'is' if len(odd) == 1 else 'are'} neither a file, a folder nor a link (first: {odd[0]}); "
                               "remove them from the build folder")
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


def scan(root: Path, game: str, version: str, params: ChunkingParams = DEFAULT_PARAMS, threads: int = 2) -> Manifest:
    """Chunk every file of the folder (in parallel: hashing releases the GIL) into a manifest."""
    folder = walk(root)
    check(folder)
    with ThreadPoolExecutor(threads) as pool:
        chunked = list(pool.map(lambda f: chunk_file(f[1], params), folder.files))
    entries = tuple(
        FileEntry(rel, c.size, executable, c.sha256, c.chunks) for (rel, _, executable), c in zip(folder.files, chunked)
    )
    return Manifest(game, version, params, entries, tuple(folder.links))
