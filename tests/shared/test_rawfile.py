"""Binary, positioned file access: the seek-based pread/pwrite Windows uses, run here against os.pread."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shared import rawfile


def test_seek_read_and_write_agree_with_pread_and_pwrite(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(bytes(range(256)) * 64)
    fd = rawfile.open_fd(path, os.O_RDWR)
    try:
        assert rawfile.seek_read(fd, 100, 1000) == os.pread(fd, 100, 1000)
        assert rawfile.seek_read(fd, 100, len(path.read_bytes()) - 10) == os.pread(fd, 100, len(path.read_bytes()) - 10)
        assert rawfile.seek_write(fd, b"\r\n\x1a" * 3, 5000) == 9  # CR LF and Ctrl-Z: what text mode would mangle
        assert os.pread(fd, 9, 5000) == b"\r\n\x1a" * 3
        assert rawfile.seek_write(fd, memoryview(b"end"), 20000) == 3
    finally:
        os.close(fd)
    assert path.read_bytes()[20000:] == b"end"


def test_a_link_is_refused_without_o_nofollow_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "real").write_bytes(b"x")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(OSError):
        rawfile.open_no_follow(tmp_path / "link")
    monkeypatch.setattr(rawfile, "NOFOLLOW", 0)  # as on Windows: the look-first check alone
    with pytest.raises(OSError, match="is a link"):
        rawfile.open_no_follow(tmp_path / "link")
    os.close(rawfile.open_no_follow(tmp_path / "real"))
