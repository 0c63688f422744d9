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


@pytest.mark.parametrize(
    "way", ["pwritev", "a write each (Windows)", "a write each, short", "short writes", "more buffers than one call takes"]
)
def test_pwrite_all_writes_every_buffer_back_to_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, way: str) -> None:
    buffers: list[bytes | memoryview] = [bytes([i]) * (100 + i) for i in range(40)]
    buffers[7] = memoryview(b"\r\n\x1a" * 50)
    if way == "a write each (Windows)":
        monkeypatch.setattr(rawfile, "_pwritev", None)
        monkeypatch.setattr(rawfile, "pwrite", rawfile.seek_write)
    elif way == "a write each, short":  # POSIX without pwritev (macOS before 11): os.pwrite may write part
        monkeypatch.setattr(rawfile, "_pwritev", None)
        monkeypatch.setattr(rawfile, "pwrite", lambda fd, data, at: os.pwrite(fd, bytes(data)[:7], at))
    elif way == "short writes":  # as a pwritev interrupted part way: at most 250 bytes, cut inside a buffer
        monkeypatch.setattr(rawfile, "_pwritev", lambda fd, bufs, at: os.pwrite(fd, b"".join(bufs)[:250], at))
    elif way == "more buffers than one call takes":
        monkeypatch.setattr(rawfile, "MOST_BUFFERS", 3)
    path = tmp_path / "f.bin"
    path.write_bytes(b"-" * 10)
    fd = rawfile.open_fd(path, os.O_RDWR)
    try:
        expected = b"".join(bytes(b) for b in buffers)
        assert rawfile.pwrite_all(fd, buffers, 5) == len(expected)
    finally:
        os.close(fd)
    assert path.read_bytes() == b"-" * 5 + expected


def test_pwrite_all_that_can_write_nothing_says_so_rather_than_spin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rawfile, "_pwritev", lambda fd, bufs, at: 0)
    fd = rawfile.open_fd(tmp_path / "f.bin", os.O_RDWR | os.O_CREAT)
    try:
        with pytest.raises(OSError, match="disk may be full"):
            rawfile.pwrite_all(fd, [b"abc"], 0)
    finally:
        os.close(fd)
