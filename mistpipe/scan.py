"""Turning a build folder into a manifest: walk it, refuse what a build cannot hold, chunk every file."""

from __future__ import annotations

import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from client.errors import ClientError
from shared.chunking import DEFAULT_PARAMS, ChunkingParams, chunk_file
from shared.manifest import FileEntry, Manifest
from shared.paths import validate_tree


class BuildFolderError(ClientError):
    """The build folder holds something a build cannot (a symlink, a device, an unsafe name)."""


def walk(root: Path) -> list[tuple[str, Path, bool]]:
    """Every regular file under `root` as (relative POSIX path, absolute path, executable)."""
    if not root.is_dir():
        raise BuildFolderError(f"{root} is not a folder; give the folder that holds the build")
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            full = Path(dirpath) / name
            st = full.lstat()
            rel = full.relative_to(root).as_posix()
            if stat.S_ISLNK(st.st_mode):
                raise BuildFolderError(
                    f"{rel} is a symbolic link; builds hold regular files only: replace it with the file it points to"
                )
            if stat.S_ISREG(st.st_mode):
                found.append((rel, full, bool(st.st_mode & 0o111)))
            elif not stat.S_ISDIR(st.st_mode):
                raise BuildFolderError(f"{rel} is not a regular file or folder; remove it from the build")
    return sorted(found)


def scan(root: Path, game: str, version: str, params: ChunkingParams = DEFAULT_PARAMS, threads: int = 2) -> Manifest:
    """Chunk every file of the folder (in parallel: hashing releases the GIL) into a manifest."""
    files = walk(root)
    try:
        validate_tree(rel for rel, _, _ in files)
    except ClientError:
        raise
    except Exception as exc:
        raise BuildFolderError(str(exc).replace("the build was rejected", "rename it before pushing")) from exc
    with ThreadPoolExecutor(threads) as pool:
        chunked = list(pool.map(lambda f: chunk_file(f[1], params), files))
    entries = tuple(
        FileEntry(rel, c.size, executable, c.sha256, c.chunks) for (rel, _, executable), c in zip(files, chunked)
    )
    return Manifest(game, version, params, entries)
