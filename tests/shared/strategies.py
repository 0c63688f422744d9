"""Valid values of the shared formats for the property tests: manifests (with links), chunk lists, hashes.

Each strategy makes only what the format allows, so a round-trip property fails on the parser, never on
the generator; the hostile ones are in tests/hostile.py.
"""

from __future__ import annotations

import posixpath

from hypothesis import strategies as st

from shared.chunking import ChunkingParams, ChunkRef
from shared.errors import ManifestError
from shared.links import LinkEntry, validate_links
from shared.manifest import SLUG_RE, VERSION_RE, FileEntry, Manifest
from shared.paths import fold, validate_path, validate_tree

sha256_hex = st.binary(min_size=32, max_size=32).map(bytes.hex)

# Names as builds have them: dots inside, spaces, capitals, accents, other scripts, emoji.
_NAME_CHARS = "abcxyzABC019_-+.() '&!~éßÅ日本\U0001f3ae"


def _valid_path(path: str) -> bool:
    try:
        validate_path(path)
    except ManifestError:
        return False
    return True


names = st.text(alphabet=_NAME_CHARS, min_size=1, max_size=10).filter(lambda n: _valid_path(n))
build_paths = st.lists(names, min_size=1, max_size=3).map("/".join).filter(_valid_path)


def _valid_tree(paths: list[str]) -> bool:
    try:
        validate_tree(paths)
    except ManifestError:
        return False
    return True


chunking_params = st.builds(
    lambda sizes, normalization: ChunkingParams(*sorted(sizes), normalization=normalization),
    st.lists(st.integers(min_value=64, max_value=16 * 1024 * 1024), min_size=3, max_size=3),
    st.integers(min_value=0, max_value=3),
)


@st.composite
def file_entries(draw: st.DrawFn, path: str, params: ChunkingParams) -> FileEntry:
    sizes = draw(st.lists(st.integers(min_value=1, max_value=params.max_size), max_size=4))
    chunks = tuple(ChunkRef(draw(sha256_hex), size) for size in sizes)
    return FileEntry(path, sum(sizes), draw(st.booleans()), draw(sha256_hex), chunks)


@st.composite
def link_entries(draw: st.DrawFn, files: list[str]) -> tuple[LinkEntry, ...]:
    """Links that resolve inside the build: to a file, a folder, or another link (a chain), from any depth."""
    folders = sorted({"/".join(p.split("/")[:i]) for p in files for i in range(1, p.count("/") + 1)})
    taken = {fold(p) for p in files} | {fold(f) for f in folders}
    links: list[LinkEntry] = []
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(build_paths)
        key = fold(path)
        if key in taken or any(key.startswith(t + "/") or t.startswith(key + "/") for t in taken):
            continue
        destination = draw(st.sampled_from(files + folders + [e.path for e in links]))
        links.append(LinkEntry(path, posixpath.relpath(destination, posixpath.dirname(path) or ".")))
        taken.add(key)
    return tuple(sorted(links, key=lambda e: e.path))


def _links_valid(files: list[str], links: tuple[LinkEntry, ...]) -> bool:
    try:
        validate_links(files, links)
    except ManifestError:
        return False
    return True


@st.composite
def manifests(draw: st.DrawFn, with_links: bool | None = None) -> Manifest:
    """A valid build, files (and links) in canonical order; format 2 (with links) about half the time."""
    params = draw(chunking_params)
    paths = sorted(draw(st.lists(build_paths, max_size=5, unique_by=fold).filter(_valid_tree)))
    files = tuple([draw(file_entries(p, params)) for p in paths])
    links: tuple[LinkEntry, ...] = ()
    if paths and (draw(st.booleans()) if with_links is None else with_links):
        links = draw(link_entries(paths).filter(lambda found: _links_valid(paths, found)))
    game = draw(st.from_regex(SLUG_RE, fullmatch=True))
    version = draw(st.from_regex(VERSION_RE, fullmatch=True))
    return Manifest(game, version, params, files, links)
