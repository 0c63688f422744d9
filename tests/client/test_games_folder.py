"""A game's folder in the games folder: a name every OS accepts."""

from __future__ import annotations

import pytest

from client.games_folder import folder_name
from shared.paths import refused_by_windows


@pytest.mark.parametrize("game", ["con", "aux", "nul", "com1", "lpt9"])
def test_a_slug_windows_refuses_as_a_folder_gets_a_suffix(game: str) -> None:
    assert refused_by_windows(game) and folder_name(game) == f"{game}-game"
    assert not refused_by_windows(folder_name(game))


def test_other_slugs_are_the_folder_name() -> None:
    assert folder_name("hollow") == "hollow" and folder_name("console") == "console"


@pytest.mark.parametrize("name", ["CON.txt", "conin$", "COM\u00b9", "trailing.", "a:b", "..", "lpt\u00b3.log"])
def test_names_windows_refuses(name: str) -> None:
    assert refused_by_windows(name)
