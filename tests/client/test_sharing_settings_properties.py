"""Properties of the sharing settings file: any settings saved load back as themselves, any rate reads back
from its own wording, and whatever the file holds (edited by hand, damaged, written by another program)
`load` gives settings or a SettingsError that names the file, never another exception."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import suppress
from datetime import time
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from client import sharing_settings as ss
from client.sharing_settings import Sharing, SettingsError, Window
from tests.hostile import REFUSED, as_json_bytes, decoded, json_values, mutations

pytestmark = pytest.mark.same_on_every_backend  # pure, and files in a folder of its own

caps = st.none() | st.integers(min_value=1, max_value=2**63)
times = st.builds(time, st.integers(min_value=0, max_value=23), st.integers(min_value=0, max_value=59))
windows = st.tuples(times, times, caps, caps).filter(lambda t: t[0] != t[1]).map(lambda t: Window(*t))
settings_values = st.builds(Sharing, st.booleans(), caps, caps, st.integers(min_value=1, max_value=2**31),
                            st.lists(windows, max_size=3).map(tuple))


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    """One folder for the module's examples (a function-scoped tmp_path would be shared by them anyway)."""
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


@given(settings_values)
def test_settings_saved_load_back_as_themselves(folder: Path, sharing: Sharing) -> None:
    path = folder / "saved.json"
    ss.save(path, sharing)
    assert ss.load(path) == sharing
    assert ss.from_json(ss.to_json(sharing)) == sharing


@given(st.none() | st.integers(min_value=1, max_value=10**15))
def test_a_rate_reads_back_from_its_own_wording(rate: int | None) -> None:
    assert ss.parse_rate(ss.format_rate(rate)) == rate


@given(settings_values.flatmap(lambda s: mutations(ss.to_json(s))) | json_values)
def test_any_document_gives_settings_or_a_settings_error(document: object) -> None:
    obj = decoded(document)
    if obj is not REFUSED:
        with suppress(SettingsError):
            sharing = ss.from_json(obj)
            assert ss.from_json(ss.to_json(sharing)) == sharing


@given(st.binary(max_size=200)
       | (settings_values.flatmap(lambda s: mutations(ss.to_json(s))) | json_values).flatmap(
           lambda doc: st.sampled_from([as_json_bytes(doc, True), as_json_bytes(doc, False)])))
def test_any_file_loads_as_settings_or_a_settings_error_naming_it(folder: Path, content: bytes) -> None:
    path = folder / "sharing.json"
    path.write_bytes(content)
    try:
        ss.load(path)
    except SettingsError as exc:
        assert str(path) in str(exc) and "delete it" in str(exc)


def test_a_file_nested_too_deep_is_a_settings_error(folder: Path) -> None:
    """Found by the property above: json.loads raises RecursionError on `[[[[...`, which escaped `load`."""
    path = folder / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(SettingsError, match="unreadable"):
        ss.load(path)
