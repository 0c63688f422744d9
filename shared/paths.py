"""Validation of the relative paths a manifest names, wherever a manifest is read.

A manifest comes from the network; its paths decide where the client writes.
Every rule here closes a way to write outside the install directory or to make
two entries land on the same file on some filesystem.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from shared.errors import ManifestError

MAX_PATH_BYTES = 1024
MAX_COMPONENT_BYTES = 255

_DRIVE = re.compile(r"^[A-Za-z]:")
# Device names Windows refuses as a file or folder name, with any extension (superscript digits included).
_WINDOWS_RESERVED = re.compile(
    r"^(con|prn|aux|nul|conin\$|conout\$|com[0-9\u00b9\u00b2\u00b3]|lpt[0-9\u00b9\u00b2\u00b3])(\..*)?$", re.IGNORECASE
)
RESERVED_TOP = ".mist"  # the client's staging and journal folder inside every install directory
_FORBIDDEN_CHARS = set('\\:*?"<>|') | {chr(c) for c in range(32)} | {"\x7f"}
# Characters a person cannot see or that reorder what they see: format characters (bidirectional overrides
# such as U+202E, zero-width spaces, U+FEFF), line and paragraph separators, and every space but the plain one
# (U+00A0). A name holding one can pass for another in a listing ("gamexe.exe" shown as "game.exe").
_INVISIBLE_CATEGORIES = ("Cf", "Zl", "Zp", "Zs")


def invisible(text: str) -> str | None:
    """The first character of `text` a person cannot see or that reorders what they see, if any."""
    return next((c for c in text if c != " " and unicodedata.category(c) in _INVISIBLE_CATEGORIES), None)


def validate_path(path: str) -> str:
    """Return `path` if it is a safe relative POSIX path, else raise ManifestError."""
    if not isinstance(path, str) or not path:
        raise ManifestError(f"manifest path must be a non-empty string (got {path!r}); the build was rejected")
    if path.startswith("/") or _DRIVE.match(path) or path.startswith("\\"):
        raise ManifestError(f"manifest path must be relative (got {path!r}); the build was rejected")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise ManifestError(f"manifest path is not valid unicode (got {path!r}); the build was rejected") from None
    if len(path.encode("utf-8")) > MAX_PATH_BYTES:
        raise ManifestError(f"manifest path is longer than {MAX_PATH_BYTES} bytes (got {path[:60]!r}...); the build was rejected")
    if unicodedata.normalize("NFC", path) != path:
        raise ManifestError(f"manifest path must be NFC-normalised unicode (got {path!r}); the build was rejected")
    for part in path.split("/"):
        if part in ("", ".", ".."):
            raise ManifestError(
                f"manifest path must be normalised, without empty, '.' or '..' parts (got {path!r}); the build was rejected"
            )
        bad = sorted(set(part) & _FORBIDDEN_CHARS)
        if bad:
            raise ManifestError(
                f"manifest path contains a character no filesystem accepts portably ({bad[0]!r} in {path!r}); the build was rejected"
            )
        hidden = invisible(part)
        if hidden is not None:
            raise ManifestError(
                f"manifest path contains the invisible or text-reordering character U+{ord(hidden):04X} "
                f"(in {path!r}); rename the file. The build was rejected"
            )
        if part.endswith((" ", ".")):
            raise ManifestError(
                f"manifest path part may not end in a space or dot (Windows drops them) (got {path!r}); the build was rejected"
            )
        if _WINDOWS_RESERVED.match(part):
            raise ManifestError(f"manifest path uses a reserved device name ({part!r} in {path!r}); the build was rejected")
        if len(part.encode("utf-8")) > MAX_COMPONENT_BYTES:
            raise ManifestError(
                f"manifest path part is longer than {MAX_COMPONENT_BYTES} bytes (in {path!r}); the build was rejected"
            )
    if path.split("/")[0].casefold() == RESERVED_TOP:
        raise ManifestError(
            f"manifest path may not start with {RESERVED_TOP!r}, the client's own folder (got {path!r}); the build was rejected"
        )
    return path


def refused_by_windows(name: str) -> bool:
    """Whether Windows refuses `name` as one file or folder name: a device name, a trailing dot or space, or
    a character it forbids."""
    return (
        bool(_WINDOWS_RESERVED.match(name))
        or name.endswith((" ", "."))
        or bool(set(name) & _FORBIDDEN_CHARS)
        or name in ("", ".", "..")
    )


def fold(path: str) -> str:
    """The key two paths share when a case-insensitive filesystem would make them one file."""
    return unicodedata.normalize("NFC", path.casefold())


def validate_tree(paths: Iterable[str]) -> None:
    """Check a whole build's paths together: no duplicates, no case collisions, no file used as a folder."""
    seen: dict[str, str] = {}
    files: set[str] = set()
    dirs: set[str] = set()
    for path in paths:
        validate_path(path)
        key = fold(path)
        if key in seen:
            if seen[key] == path:
                raise ManifestError(f"manifest names {path!r} twice; the build was rejected")
            raise ManifestError(
                f"manifest paths {seen[key]!r} and {path!r} differ only in case and would collide on "
                "Windows and macOS; the build was rejected"
            )
        seen[key] = path
        files.add(key)
        parts = key.split("/")
        for i in range(1, len(parts)):
            dirs.add("/".join(parts[:i]))
    clash = files & dirs
    if clash:
        name = sorted(clash)[0]
        raise ManifestError(f"manifest uses {name!r} both as a file and as a folder; the build was rejected")
