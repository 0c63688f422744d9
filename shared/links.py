"""Symbolic links a build carries (`lib/libfoo.so.1 -> libfoo.so.1.2`, a macOS framework's `Versions/Current -> A`).

Linux and macOS builds ship them, and a game may not start without them. A
link is carried only when its target is relative and resolves, through any
other links of the build, to a file or folder of the same build: a link that
points outside, is absolute, dangles or loops would let a build reach files
it does not hold, so it is refused. Pure: paths in, decisions out.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from shared.errors import ManifestError
from shared.paths import MAX_PATH_BYTES, fold, invisible, validate_path

MAX_HOPS = 40  # links followed to resolve one path (Linux's own limit)
_FORBIDDEN = set('\\:*?"<>|') | {chr(c) for c in range(32)} | {"\x7f"}


@dataclass(frozen=True)
class LinkEntry:
    """A symbolic link of the build: where it goes (a build path) and what it points to (relative to its folder)."""

    path: str
    target: str


def _reject(why: str) -> ManifestError:
    return ManifestError(f"{why}; the build was rejected")


def check_target(link: str, target: str) -> str:
    """A link target as a build may hold it: relative, normalised, `/`-separated; return the build path it names."""
    if not isinstance(target, str) or not target:
        raise _reject(f"link {link!r} has no target")
    if target.startswith("/") or target[1:2] == ":":
        raise _reject(f"link {link!r} points to the absolute path {target!r}; only links within the build are carried")
    if len(target.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES or set(target) & _FORBIDDEN or invisible(target):
        raise _reject(f"link {link!r} has a target no filesystem accepts portably ({target!r})")
    if posixpath.normpath(target) != target or target == ".":
        raise _reject(f"link {link!r} has a target that is not normalised ({target!r}); write it without '.', '//' or 'a/..'")
    parts = posixpath.dirname(link).split("/") if "/" in link else []
    for part in target.split("/"):
        if part == "..":
            if not parts:
                raise _reject(f"link {link!r} points outside the build ({target!r})")
            parts.pop()
        else:
            parts.append(part)
    if not parts:
        raise _reject(f"link {link!r} points to the build's own folder ({target!r})")
    return "/".join(parts)


def resolve(path: str, links: Mapping[str, str], hops: int = 0) -> str:
    """The build path `path` names once every link on its way is followed (`links`: link path -> build path)."""
    parts = path.split("/")
    for i in range(1, len(parts) + 1):
        prefix = "/".join(parts[:i])
        if prefix in links:
            if hops >= MAX_HOPS:
                raise _reject(f"links loop or chain more than {MAX_HOPS} times on the way to {path!r}")
            rest = "/".join(parts[i:])
            return resolve(links[prefix] + ("/" + rest if rest else ""), links, hops + 1)
    return path


def validate_links(files: Iterable[str], links: Iterable[LinkEntry]) -> None:
    """Check every link of a build together with its files; one error naming every bad link at once.

    A link's own path follows the rules of file paths (and may not collide with a file, even by case), nothing
    of the build lies under a link (writing it would go through the link), and each target resolves to a file
    or folder of the build.
    """
    file_set = set(files)
    folders = {posixpath.dirname(p) for p in file_set}
    folders = {"/".join(f.split("/")[:i]) for f in folders if f for i in range(1, f.count("/") + 2)}
    entries = list(links)
    written = {e.path: e.target for e in entries}
    targets: dict[str, str] = {}
    problems: list[str] = []
    seen = {fold(p) for p in file_set}
    for entry in entries:
        try:
            validate_path(entry.path)
            if fold(entry.path) in seen or entry.path in folders:
                raise _reject(f"link {entry.path!r} has the name of a file or folder of the build")
            seen.add(fold(entry.path))
            targets[entry.path] = check_target(entry.path, entry.target)
        except ManifestError as exc:
            problems.append(str(exc).removesuffix("; the build was rejected"))
    link_folders = {"/".join(p.split("/")[:i]) for p in targets for i in range(1, p.count("/") + 1)}
    for path in sorted(file_set | set(targets)):  # each path's folders looked up once: linear in the build
        parts = path.split("/")
        link = next(("/".join(parts[:i]) for i in range(1, len(parts)) if "/".join(parts[:i]) in targets), None)
        if link is not None:
            problems.append(f"{path!r} lies under the link {link!r}")
    for path, target in targets.items():
        try:
            final = resolve(target, targets)
        except ManifestError as exc:
            problems.append(f"link {path!r}: " + str(exc).removesuffix("; the build was rejected"))
            continue
        if final not in file_set and final not in folders and final not in link_folders:
            given = written[path]
            problems.append(f"link {path!r} points to {given!r}, which is not in the build (dangling)")
    if problems:
        shown = "; ".join(problems[:20]) + (f"; and {len(problems) - 20} more" if len(problems) > 20 else "")
        raise _reject(f"{len(problems)} link problem{'s' if len(problems) != 1 else ''}: {shown}")


def folder_links(files: Iterable[str], links: Iterable[LinkEntry]) -> set[str]:
    """The links of a (valid) build that resolve to a folder: Windows must know when it makes them, or copies them."""
    entries = list(links)
    targets = {e.path: check_target(e.path, e.target) for e in entries}
    file_set = set(files)
    return {e.path for e in entries if resolve(targets[e.path], targets) not in file_set}
