"""The manifest: one canonical byte form per build, and no hostile manifest gets past `parse`.

tests/shared/fixtures/manifest-v1.json was generated once, from the repository root, with

    .venv/bin/python -c "import sys; sys.path.insert(0, 'tests/shared'); import test_manifest as t; \
open(t.FIXTURE, 'wb').write(t.sample_manifest().canonical_bytes())"

and is frozen: if the encoding changes, every signed manifest and every build identity changes with it.
"""

import hashlib
import json
from pathlib import Path

import pytest

from shared.chunking import DEFAULT_PARAMS, ChunkRef
from shared.errors import ManifestError
from shared.manifest import FileEntry, Manifest, canonical_json, parse

FIXTURE = Path(__file__).parent / "fixtures" / "manifest-v1.json"
FIXTURE_DIGEST = "f826bbf443a13a4720bdf875cee3151bdb201799384c45c70264c0b15e9420f5"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def entry(path: str, *pieces: bytes, executable: bool = False) -> FileEntry:
    whole = b"".join(pieces)
    return FileEntry(path, len(whole), executable, sha(whole), tuple(ChunkRef(sha(p), len(p)) for p in pieces))


def sample_manifest() -> Manifest:
    return Manifest(
        game="hollow",
        version="1.0.2",
        chunking=DEFAULT_PARAMS,
        files=(
            entry("bin/hollow", b"#!/bin/sh\n", b"echo hollow\n", executable=True),
            entry("data/caf\u00e9.txt", b"bonjour\n"),
            entry("empty.cfg"),
        ),
    )


def fixture_json() -> dict:
    return json.loads(FIXTURE.read_bytes())


def keys_reversed(obj: object) -> object:
    if isinstance(obj, dict):
        return {k: keys_reversed(obj[k]) for k in reversed(sorted(obj))}
    if isinstance(obj, list):
        return [keys_reversed(v) for v in obj]
    return obj


def rejected(obj: object) -> ManifestError:
    with pytest.raises(ManifestError) as info:
        parse(canonical_json(obj))
    return info.value


def with_file(**changes: object) -> dict:
    obj = fixture_json()
    obj["files"][0].update(changes)
    return obj


# The canonical form


def test_encoding_yields_exactly_the_fixture_bytes():
    assert sample_manifest().canonical_bytes() == FIXTURE.read_bytes()


def test_parse_round_trips_the_fixture():
    manifest = parse(FIXTURE.read_bytes())
    assert manifest == sample_manifest()
    assert manifest.canonical_bytes() == FIXTURE.read_bytes()


def test_digest_is_stable():
    assert sample_manifest().digest() == FIXTURE_DIGEST
    assert FIXTURE_DIGEST == sha(FIXTURE.read_bytes())


def test_files_encode_sorted_whatever_their_order():
    manifest = sample_manifest()
    shuffled = Manifest(manifest.game, manifest.version, manifest.chunking, tuple(reversed(manifest.files)))
    assert shuffled.canonical_bytes() == manifest.canonical_bytes()


def test_unicode_is_encoded_as_utf8_not_escaped():
    assert "data/caf\u00e9.txt".encode() in FIXTURE.read_bytes()


def test_sizes_and_offsets():
    manifest = sample_manifest()
    assert manifest.total_size == 30
    binary = manifest.files[0]
    assert [(offset, ref.size) for offset, ref in binary.offsets()] == [(0, 10), (10, 12)]
    assert manifest.chunk_sizes() == {sha(b"#!/bin/sh\n"): 10, sha(b"echo hollow\n"): 12, sha(b"bonjour\n"): 8}


# Hostile or malformed manifests


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("/etc/passwd", "relative"),
        ("../../.bashrc", "'..'"),
        ("./x", "'.'"),
        ("a//b", "empty"),
        ("a\\b", "character"),
        ("C:/x", "relative"),
        ("a\x00b", "character"),
        ("a\x01b", "character"),
        ("con.txt", "reserved device name"),
        ("aux", "reserved device name"),
        ("a.", "space or dot"),
        ("a ", "space or dot"),
        (".mist/journal.json", "'.mist'"),
        ("cafe\u0301.txt", "NFC"),
    ],
)
def test_hostile_path_is_rejected(path, problem):
    assert problem in str(rejected(with_file(path=path)))


def test_lone_surrogate_in_path_is_rejected():
    # "\ud800" is valid JSON text but no UTF-8 file name; parse must say ManifestError, not crash.
    data = json.dumps(with_file(path="a\ud800"), sort_keys=True, separators=(",", ":")).encode()
    with pytest.raises(ManifestError):
        parse(data)


def test_duplicate_path_is_rejected():
    obj = fixture_json()
    obj["files"].append(dict(obj["files"][0]))
    assert "twice" in str(rejected(obj))


def test_case_collision_is_rejected():
    obj = fixture_json()
    obj["files"] = [dict(obj["files"][2], path="Data/A.bin"), dict(obj["files"][2], path="data/a.bin")]
    assert "differ only in case" in str(rejected(obj))


def test_file_used_as_folder_is_rejected():
    obj = fixture_json()
    obj["files"] = [dict(obj["files"][2], path="a"), dict(obj["files"][2], path="a/b")]
    assert "both as a file and as a folder" in str(rejected(obj))


def test_size_that_does_not_add_up_is_rejected():
    assert "add up to 22" in str(rejected(with_file(size=23)))


def test_chunk_bigger_than_max_is_rejected():
    big = DEFAULT_PARAMS.max_size + 1
    message = str(rejected(with_file(size=big, chunks=[["a" * 64, big]])))
    assert f"chunk of {big} bytes" in message


@pytest.mark.parametrize("size", [0, -1, True, 1.5])
def test_chunk_of_invalid_size_is_rejected(size):
    assert "chunk" in str(rejected(with_file(chunks=[["a" * 64, size]])))


@pytest.mark.parametrize("size", [-1, True, "22", None])
def test_invalid_file_size_is_rejected(size):
    assert "invalid size" in str(rejected(with_file(size=size)))


def test_non_boolean_executable_is_rejected():
    assert "executable" in str(rejected(with_file(executable=1)))


@pytest.mark.parametrize("bad", ["A" * 64, "a" * 63, "a" * 65, "g" * 64, "", 7, "a" * 64 + "\n"])
def test_bad_file_hash_is_rejected(bad):
    assert "invalid sha256" in str(rejected(with_file(sha256=bad)))


@pytest.mark.parametrize("bad", ["A" * 64, "a" * 63, "z" * 64, "a" * 64 + "\n"])
def test_bad_chunk_hash_is_rejected(bad):
    obj = with_file()
    obj["files"][0]["chunks"][0][0] = bad
    assert "malformed chunk" in str(rejected(obj))


@pytest.mark.parametrize("chunk", [["a" * 64], ["a" * 64, 10, 0], {"sha256": "a" * 64, "size": 10}, "a" * 64])
def test_malformed_chunk_entry_is_rejected(chunk):
    obj = with_file()
    obj["files"][0]["chunks"][0] = chunk
    assert "malformed chunk" in str(rejected(obj))


@pytest.mark.parametrize("extra", [{"symlink": True}, {"target": "/etc/passwd"}, {"mode": 0o4755}])
def test_unknown_file_key_is_rejected(extra):
    # Manifests cannot express symlinks or anything else beyond a plain file.
    assert "exactly the keys" in str(rejected(with_file(**extra)))


def test_missing_file_key_is_rejected():
    obj = fixture_json()
    del obj["files"][0]["executable"]
    assert "exactly the keys" in str(rejected(obj))


def test_unknown_top_level_key_is_rejected():
    obj = fixture_json()
    obj["signature"] = "x"
    assert "exactly the keys" in str(rejected(obj))


@pytest.mark.parametrize("version", [0, 3, "1", None])
def test_unsupported_format_version_is_rejected(version):
    obj = fixture_json()
    obj["format"] = version
    assert "is not supported" in str(rejected(obj))


@pytest.mark.parametrize("game", ["", "Hollow", "-hollow", "hol low", "hol_low", "a" * 65, 3, "hollow\n"])
def test_bad_game_slug_is_rejected(game):
    obj = fixture_json()
    obj["game"] = game
    assert "game must be a slug" in str(rejected(obj))


@pytest.mark.parametrize("version", ["", ".1", "1 0", "1/0", "a" * 65, 1.0, "1.0\n"])
def test_bad_version_is_rejected(version):
    obj = fixture_json()
    obj["version"] = version
    assert "version must be like" in str(rejected(obj))


@pytest.mark.parametrize(
    "chunking",
    [
        {"algorithm": "rabin", "min": 1, "avg": 2, "max": 3, "normalization": 1},
        dict(DEFAULT_PARAMS.to_json(), min=DEFAULT_PARAMS.avg_size + 1),
        dict(DEFAULT_PARAMS.to_json(), normalization=4),
        dict(DEFAULT_PARAMS.to_json(), avg="65536"),
        dict(DEFAULT_PARAMS.to_json(), extra=1),
    ],
)
def test_bad_chunking_parameters_are_rejected(chunking):
    obj = fixture_json()
    obj["chunking"] = chunking
    assert "chunking" in str(rejected(obj))


def test_files_not_a_list_is_rejected():
    obj = fixture_json()
    obj["files"] = {}
    assert "must be a list" in str(rejected(obj))


@pytest.mark.parametrize(
    "encode",
    [
        lambda obj: json.dumps(obj, sort_keys=True, ensure_ascii=False).encode(),  # spaces
        lambda obj: json.dumps(obj, sort_keys=True, indent=1, ensure_ascii=False).encode(),
        lambda obj: json.dumps(keys_reversed(obj), separators=(",", ":"), ensure_ascii=False).encode(),
        lambda obj: json.dumps(obj, sort_keys=True, separators=(",", ":")).encode(),  # \u00e9 escapes
        lambda obj: canonical_json(obj) + b"\n",
        lambda obj: canonical_json(dict(obj, files=obj["files"][::-1])),  # unsorted files
    ],
)
def test_non_canonical_encoding_is_rejected(encode):
    with pytest.raises(ManifestError, match="not in canonical form"):
        parse(encode(fixture_json()))


@pytest.mark.parametrize("data", [b"\xff\xfe", b"{", b"", b'"x"', b"[]", b"null"])
def test_garbage_is_rejected(data):
    with pytest.raises(ManifestError, match="rejected"):
        parse(data)


def test_links_out_of_order_are_not_canonical():
    obj = dict(fixture_json(), format=2, links=[{"path": "z-link", "target": obj_path} for obj_path in ()] or [
        {"path": "zz", "target": fixture_json()["files"][0]["path"]},
        {"path": "aa", "target": fixture_json()["files"][0]["path"]},
    ])
    with pytest.raises(ManifestError, match="not in canonical form"):
        parse(canonical_json(obj))
    parse(canonical_json(dict(obj, links=obj["links"][::-1])))  # the same links in order: accepted


@pytest.mark.parametrize("bad", [[True], ["ab" * 32, True], ["ab" * 32, 1.0], ["AB" * 32, 5], ["ab" * 31, 5], ["ab" * 32, 5, 5], "ab"])
def test_every_malformed_chunk_among_good_ones_is_named(bad):
    """Chunk lists are checked in bulk; one bad chunk among many is still found and named."""
    obj = fixture_json()
    target = max(obj["files"], key=lambda f: len(f["chunks"]))
    target["chunks"].insert(1, list(bad) if isinstance(bad, list) else bad)
    assert "malformed chunk" in str(rejected(obj))


def test_chunks_beyond_a_previous_build_are_those_of_files_it_did_not_have_with_the_same_chunks() -> None:
    """What a push asks the seeder about and its commit checks is stored (mistpipe/push.py, commit_check.py)."""
    old = Manifest("g", "1", DEFAULT_PARAMS, (entry("a", b"A1", b"A2"), entry("b", b"B"), entry("c", b"C1", b"C2")))
    moved = entry("moved", b"B")  # renamed: the same content and chunks are vouched for
    rechunked = FileEntry("c", 4, False, sha(b"C1C2"), (ChunkRef(sha(b"C1C2"), 4),))  # same content, other chunks
    new = Manifest("g", "2", DEFAULT_PARAMS, (entry("a", b"A1", b"A3"), moved, rechunked))
    assert new.chunks_beyond(old) == {sha(b"A1"): 2, sha(b"A3"): 2, sha(b"C1C2"): 4}
    assert new.chunks_beyond(None) == new.chunk_sizes()
