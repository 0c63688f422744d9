"""Progress bars are for people: none with --json, none when stderr is not a terminal."""

from __future__ import annotations

import io
import sys

from client.progress import Bars, Quiet, for_output, human


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_json_output_is_always_quiet(monkeypatch) -> None:
    monkeypatch.setattr(sys, "stderr", _Terminal())
    assert isinstance(for_output(True), Quiet)


def test_a_terminal_gets_bars_and_a_pipe_does_not(monkeypatch) -> None:
    monkeypatch.setattr(sys, "stderr", _Terminal())
    assert isinstance(for_output(False), Bars)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert isinstance(for_output(False), Quiet)


def test_sizes_read_naturally() -> None:
    assert [human(n) for n in (0, 999, 1500, 2_500_000, 7e9, 3e12)] == ["0 B", "999 B", "1.5 KB", "2.5 MB", "7.0 GB", "3.0 TB"]
