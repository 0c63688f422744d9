"""Which paths of an install folder still hold what Mist put there: Mist removes only those.

A friend may replace a game file with their own (a mod, a fixed config) or
put a link where one was. When an update drops that path, or the game is
uninstalled, the friend's file stays. Mist records the size and time of each
file as it leaves it (client/state.py); a file that no longer matches is the
friend's. Installs recorded before those records existed fall back to the
size the manifest gives.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from client.state import FileStats
from shared.links import LinkEntry
from shared.build_index import BuildIndex


def file_stats(root: Path, paths: Iterable[str]) -> FileStats:
    """(size, mtime in ns) of each path that is a regular file now (others are left out)."""
    found: FileStats = {}
    for rel in paths:
        try:
            st = os.lstat(root / rel)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            found[rel] = (st.st_size, st.st_mtime_ns)
    return found


def links_on_disk(root: Path, links: Iterable[LinkEntry]) -> dict[str, str]:
    """The target of the symbolic link at each of these paths (as a build writes it), where there is one."""
    found = {}
    for entry in links:
        try:
            found[entry.path] = os.readlink(root / entry.path).replace(os.sep, "/")
        except OSError:
            continue  # nothing there, not a link, or a copy made where links are refused
    return found


def split_ours(root: Path, paths: Iterable[str], installed: BuildIndex, stats: FileStats | None) -> tuple[list[str], list[str]]:
    """(paths to remove, paths to leave): a path is removed only while it still holds what Mist put there.

    A path that holds nothing any more counts as removable (there is nothing to lose).
    """
    targets = {e.path: e.target for e in installed.links}
    ours: list[str] = []
    theirs: list[str] = []
    for rel in paths:
        path = root / rel
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            ours.append(rel)
            continue
        if stat.S_ISLNK(st.st_mode):
            mine = rel in targets and os.readlink(path).replace(os.sep, "/") == targets[rel]
        elif stat.S_ISREG(st.st_mode) and (entry := installed.info(rel)) is not None:
            recorded = stats.get(rel) if stats is not None else None
            mine = (st.st_size, st.st_mtime_ns) == recorded if recorded else st.st_size == entry.size
        else:
            mine = stat.S_ISDIR(st.st_mode) and rel in targets  # our copy of a linked folder, where links are refused
        (ours if mine else theirs).append(rel)
    return ours, theirs
