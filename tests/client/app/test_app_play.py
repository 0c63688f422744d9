"""Play's command line: the build's program, inside its folder, with its arguments."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from client.app.play import PlayError, command_line, human_duration


def test_the_program_must_be_a_file_of_the_install_folder(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "game").write_text("#!/bin/sh\n")
    assert command_line("bin/game --fullscreen 'a b'", tmp_path) == [str(tmp_path / "bin" / "game"), "--fullscreen", "a b"]
    assert command_line("./bin/game", tmp_path) == [str(tmp_path / "bin" / "game")]
    for bad in ("../outside", "/bin/sh", "bin/missing", "", "   "):
        with pytest.raises(PlayError):
            command_line(bad, tmp_path)
    os.symlink("/usr/bin", tmp_path / "link")
    with pytest.raises(PlayError, match="not inside the game's folder"):
        command_line("link/env", tmp_path)  # a planted link does not lead out


def test_time_played_reads_as_people_say_it() -> None:
    assert [human_duration(s) for s in (20, 125, 3600 * 2 + 61)] == ["less than a minute", "2 min", "2 h 01 min"]
