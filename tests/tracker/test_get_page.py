"""The /get page's pure parts: which platform a visitor is on, and which bundles the admin offers."""

from __future__ import annotations

import zipfile
from io import BytesIO
from pathlib import Path

import pytest

from tracker import client_wheel
from tracker.routes.get_page import bundles, detect

pytestmark = pytest.mark.same_on_every_backend


@pytest.mark.parametrize("agent, hint, platform", [
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0", "", "windows"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15", "", "macos"),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "", "linux"),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/131.0 Mobile", "", None),
    ("Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0", '"Windows"', "windows"),  # the client hint wins
    ("curl/8.5.0", "", None),
])
def test_the_platform_comes_from_the_client_hint_or_the_user_agent(agent: str, hint: str, platform: str | None) -> None:
    assert detect(agent, hint) == platform


def test_only_files_named_like_bundles_are_offered(tmp_path: Path) -> None:
    for name in ("mist-linux-x86_64.tar.gz", "mist-windows-x86_64.zip", "notes.txt", "mist-linux-x86_64.tar.gz.part"):
        (tmp_path / name).write_bytes(b"x" * 10)
    (tmp_path / "mist-macos-arm64.zip").mkdir()
    assert [(b.platform, b.name) for b in bundles(tmp_path)] == [("linux", "mist-linux-x86_64.tar.gz"),
                                                                 ("windows", "mist-windows-x86_64.zip")]
    assert bundles(tmp_path / "absent") == []


def test_the_wheel_holds_the_packages_the_mist_command_and_the_base_requirements(tmp_path: Path) -> None:
    package = tmp_path / "client"
    (package / "__pycache__").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"compiled")
    requires = client_wheel.base_requirements(["aiortc>=1.16", 'sqlalchemy>=2.0; extra == "server"', "keyring>=24"])
    wheel = client_wheel.build("1.2.3", requires, [package])
    assert wheel.filename == "mist-1.2.3-py3-none-any.whl"
    assert wheel == client_wheel.build("1.2.3", requires, [package])  # the same bytes: a stable ETag
    archive = zipfile.ZipFile(BytesIO(wheel.data))
    names = archive.namelist()
    assert "client/__init__.py" in names and not any("__pycache__" in n for n in names)
    metadata = archive.read("mist-1.2.3.dist-info/METADATA").decode()
    assert "Requires-Dist: aiortc>=1.16" in metadata and "sqlalchemy" not in metadata
    assert archive.read("mist-1.2.3.dist-info/entry_points.txt").decode() == "[console_scripts]\nmist = client.cli:main\n"
    assert archive.read("mist-1.2.3.dist-info/RECORD").decode().endswith("mist-1.2.3.dist-info/RECORD,,\n")
