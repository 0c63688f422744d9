"""Properties of the manifest parser: every valid build has one byte form that reads back as itself, and
nothing else an outsider can send gets anything but a ManifestError out of `parse` or `from_json`."""

from __future__ import annotations

import json
from contextlib import suppress

import pytest
from hypothesis import given, strategies as st

from shared.errors import ManifestError
from shared.manifest import FileEntry, Manifest, from_json, parse
from tests.hostile import INVISIBLE, REFUSED, as_json_bytes, decoded, json_values, mutations, odd_text
from tests.shared.strategies import chunking_params, manifests, sha256_hex

pytestmark = pytest.mark.same_on_every_backend  # pure: bytes in, values out


@given(manifests())
def test_a_manifest_reads_back_from_its_canonical_bytes_as_itself(manifest: Manifest) -> None:
    data = manifest.canonical_bytes()
    parsed = parse(data)
    assert parsed == manifest
    assert parsed.canonical_bytes() == data
    assert parsed.digest() == manifest.digest()
    assert from_json(json.loads(data)) == manifest


@given(manifests(), st.sampled_from(["spaces", "indent", "ascii", "unsorted", "trailing newline"]))
def test_any_other_encoding_of_a_manifest_is_refused(manifest: Manifest, how: str) -> None:
    document = manifest.to_json()
    other = {
        "spaces": lambda: json.dumps(document, sort_keys=True, ensure_ascii=False).encode(),
        "indent": lambda: json.dumps(document, sort_keys=True, ensure_ascii=False, indent=1).encode(),
        "ascii": lambda: json.dumps(document, sort_keys=True, separators=(",", ":")).encode(),
        "unsorted": lambda: json.dumps(dict(reversed(document.items())), separators=(",", ":"),
                                       ensure_ascii=False).encode(),
        "trailing newline": lambda: manifest.canonical_bytes() + b"\n",
    }[how]()
    if other == manifest.canonical_bytes():
        return  # that encoding happens to be the canonical one for this manifest (all ASCII, say)
    with pytest.raises(ManifestError, match="canonical|rejected"):
        parse(other)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_get_only_a_manifest_error(data: bytes) -> None:
    with suppress(ManifestError):
        parse(data)


@given(manifests().flatmap(lambda m: mutations(m.to_json())), st.booleans())
def test_a_damaged_manifest_is_refused_with_a_manifest_error_or_read_exactly(document, ascii_only: bool) -> None:
    data = as_json_bytes(document, ascii_only)
    with suppress(ManifestError):
        assert parse(data).canonical_bytes() == data
    obj = decoded(document)
    if obj is not REFUSED:
        with suppress(ManifestError):
            data = from_json(obj).canonical_bytes()  # from_json keeps the document's order; the bytes sort it
            assert parse(data).canonical_bytes() == data


def test_a_number_too_long_to_convert_is_a_manifest_error() -> None:
    """Found by the property above: Python's decoder refuses integers of more than 4,300 digits with a plain
    ValueError, which escaped `parse` (a 500 on a build commit instead of a refusal)."""
    with pytest.raises(ManifestError, match="not valid UTF-8 JSON"):
        parse(b'{"format":' + b"9" * 5000 + b"}")


@given(json_values)
def test_any_json_document_gets_only_a_manifest_error(document: object) -> None:
    with suppress(ManifestError):
        parse(as_json_bytes(document))
    obj = decoded(document)
    if obj is not REFUSED:
        with suppress(ManifestError):
            from_json(obj)


# Parts of names: any odd text, and plain names with a hidden character somewhere (refused since issue 17.10).
_hidden = st.text(st.sampled_from(["a", "b", "é", *INVISIBLE]), min_size=1, max_size=5)


@given(chunking_params, st.lists(st.lists(odd_text | _hidden, min_size=1, max_size=4).map("/".join), max_size=4),
       sha256_hex)
def test_paths_with_invisible_or_reordering_characters_never_break_the_parser(params, paths, sha) -> None:
    """U+202E, U+200B, U+FEFF, lone surrogates and separators in a path: refused with a ManifestError, or kept
    such that the build still has one byte form that reads back as itself; an invisible character never is."""
    files = [FileEntry(p, 0, False, sha, ()) for p in paths]
    document = Manifest("game", "1.0", params, ()).to_json()
    document["files"] = [{"path": f.path, "size": 0, "executable": False, "sha256": sha, "chunks": []} for f in files]
    with suppress(ManifestError):
        data = from_json(document).canonical_bytes()
        assert parse(data).canonical_bytes() == data
        assert not set("".join(paths)) & set(INVISIBLE), paths
