"""Swapping staged files into the install directory with a journal, so a crash leaves the old build or the new one.

The journal is written (and fsynced) only once every staged file is complete
and verified. Applying it is idempotent: deletes of files already gone and
moves whose staged file is already gone are skipped, so after a crash at any
point, applying the same journal again finishes the swap.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from client import crashpoints, filemode, swap
from client.errors import InstallError
from shared.durable import sync_directory, write_atomic
from shared.paths import fold

MIST_DIR = ".mist"
JOURNAL = "journal.json"


@dataclass(frozen=True)
class Journal:
    game: str
    version: str
    digest: str
    moves: list[tuple[str, str]]  # (staged file relative to MIST_DIR, final path relative to the install root)
    deletes: list[str]
    modes: list[tuple[str, bool]]  # files whose content is right but whose executable bit changes
    links: list[tuple[str, str, bool]] = field(default_factory=list)  # to make: (path, target, points to a folder)
    # The installed build's links: a folder at one of these paths is our own copy of the folder it pointed to,
    # made where links are refused, and may be removed or replaced.
    old_links: list[str] = field(default_factory=list)
    in_place: list[str] = field(default_factory=list)  # files already written where they lie (client/inplace.py)


def write(root: Path, journal: Journal) -> None:
    write_atomic(root / MIST_DIR / JOURNAL, json.dumps(asdict(journal)).encode())


def read(root: Path) -> Journal | None:
    try:
        obj = json.loads((root / MIST_DIR / JOURNAL).read_text())
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise InstallError(f"the swap journal in {root / MIST_DIR} is damaged; run `mist verify --repair`") from exc
    return Journal(
        obj["game"],
        obj["version"],
        obj["digest"],
        [tuple(m) for m in obj["moves"]],
        list(obj["deletes"]),
        [tuple(m) for m in obj["modes"]],
        [tuple(m) for m in obj.get("links", [])],
        list(obj.get("old_links", [])),
        list(obj.get("in_place", [])),
    )


def clear(root: Path) -> None:
    (root / MIST_DIR / JOURNAL).unlink(missing_ok=True)


class Confined:
    """Paths under an install root, refusing any whose folders lead outside it (a planted symlink).

    Each folder is resolved once per phase: a game has thousands of files in a few hundred folders.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._real_root = os.path.realpath(root)
        self._checked: set[Path] = set()

    def __repr__(self) -> str:
        return f"Confined(root={str(self.root)!r}, checked={len(self._checked)})"

    def path(self, rel: str) -> Path:
        target = self.root / rel
        folder = target.parent
        if folder not in self._checked:
            real = os.path.realpath(folder)
            if real != self._real_root and not real.startswith(self._real_root + os.sep):
                raise InstallError(
                    f"{rel} would be written outside {self.root} (a folder on its way is a link to {real}); "
                    "remove the link and retry"
                )
            self._checked.add(folder)
        return target

    def forget(self) -> None:
        """Folders may have been removed or replaced: check them again."""
        self._checked.clear()


def _prune_empty_parents(root: Path, rel: str) -> None:
    parent = (root / rel).parent
    while parent != root:
        try:
            parent.rmdir()
        except OSError:
            return
        parent = parent.parent


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def make_link(final: Path, target: str, to_folder: bool, replace_folder: bool) -> None:
    """Put a symbolic link at `final`, or where the filesystem refuses links (FAT, Windows without the right to
    make them), a copy of what it points to. Made beside and moved in, so `final` is never half made."""
    native = target.replace("/", os.sep)
    if final.is_symlink() and os.readlink(final) == native:
        return  # made before a crash
    if final.is_dir() and not final.is_symlink():
        if not replace_folder:
            raise InstallError(f"{final} is a folder, but the new build has a link there; move it away and retry")
        shutil.rmtree(final)  # our own copy of the folder the link pointed to, made where links are refused
    final.parent.mkdir(parents=True, exist_ok=True)
    beside = final.with_name(final.name + ".mist-link")
    if os.path.lexists(beside):
        _remove(beside)
    try:
        os.symlink(native, beside, target_is_directory=to_folder)
    except (OSError, NotImplementedError):
        source = final.parent / native
        if to_folder:
            shutil.copytree(source, beside, symlinks=True)
        else:
            shutil.copy2(source, beside)
    os.replace(beside, final)


def _crash_point(step: str) -> None:
    if step == "move":
        crashpoints.reach("mid-swap")


def apply(root: Path, journal: Journal, after: Callable[[str], None] = _crash_point) -> None:
    """Carry out the swap: remove what the new build dropped, move every staged file into place, make its links.

    `after(step)` is called after each delete, move, link and mode change: where the tests stop it, as a crash would.
    """
    confined = Confined(root)
    moved_in = {fold(final) for staged, final in journal.moves if not (root / MIST_DIR / staged).exists()}
    copies = set(journal.old_links)
    for rel in journal.deletes:
        if fold(rel) in moved_in:
            continue  # on a case-insensitive disk this name is now the new file, moved in before a crash
        path = confined.path(rel)
        if path.is_symlink() or path.is_file():
            swap.remove(path)
        elif rel in copies and path.is_dir():
            shutil.rmtree(path)
        _prune_empty_parents(root, rel)
        after("delete")
    confined.forget()
    touched: set[Path] = set()
    for staged_rel, rel in journal.moves:
        staged = root / MIST_DIR / staged_rel
        if not staged.exists():
            continue  # moved before the crash
        final = confined.path(rel)  # resolved before mkdir, so no folder is ever made through a planted link
        if final.parent not in touched:
            final.parent.mkdir(parents=True, exist_ok=True)
        if final.is_dir() and not final.is_symlink():
            raise InstallError(f"{rel} is a folder in the install directory but a file in the new build; move it away and retry")
        swap.replace(staged, final)
        touched.add(final.parent)
        after("move")
    for rel, target, to_folder in journal.links:
        final = confined.path(rel)
        make_link(final, target, to_folder, rel in copies)
        touched.add(final.parent)
        after("link")
    for rel, executable in journal.modes:
        path = confined.path(rel)
        if path.is_file() and not path.is_symlink():
            filemode.set_mode(path, executable)
        after("mode")
    for folder in touched:
        sync_directory(folder)
