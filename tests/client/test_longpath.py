"""Windows' extended-length paths, made with ntpath (Windows' path rules, importable everywhere)."""

from __future__ import annotations

import pytest

from client.longpath import extended_windows, plain_windows


@pytest.mark.parametrize("path, long_form", [
    ("C:\\Games\\hollow", "\\\\?\\C:\\Games\\hollow"),
    ("C:/Games/./hollow/", "\\\\?\\C:\\Games\\hollow"),  # normalised: the long form takes no / or .
    ("\\\\nas\\games\\hollow", "\\\\?\\UNC\\nas\\games\\hollow"),
    ("\\\\?\\D:\\already", "\\\\?\\D:\\already"),
])
def test_absolute_paths_get_the_long_form_and_back(path: str, long_form: str) -> None:
    assert extended_windows(path) == long_form
    assert extended_windows(plain_windows(long_form)) == long_form


def test_a_relative_path_has_no_long_form() -> None:
    with pytest.raises(ValueError, match="absolute"):
        extended_windows("Games\\hollow")


def test_a_deep_file_under_the_long_form_keeps_its_whole_path() -> None:
    deep = "\\".join(["Content", "Paks"] + ["level"] * 60 + ["asset.pak"])
    joined = extended_windows("C:\\Games\\hollow") + "\\" + deep
    assert len(joined) > 260 and joined.startswith("\\\\?\\C:\\") and "/" not in joined
