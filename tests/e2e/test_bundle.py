"""The standalone Linux bundle (scripts/build_bundle.py: PyInstaller, one folder with its own Python), built
once per run and driven like a friend without Python would: help, login, install, verify against a real server.

Building it costs about 70 CPU-seconds (PyInstaller's analysis and the copying of aiortc's media libraries);
its archive is not made here (gzip of ~260 MB would add more and prove nothing the folder does not).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import FRIEND_PASSWORD, Person, Server
from tests.e2e.gametree import MB, assert_same_tree, make_tree

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundle")
    built = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_bundle.py"), "--out", str(out), "--no-archive"],
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stdout + built.stderr
    program = out / "mist" / "mist"
    assert program.is_file()
    return program.parent


def bare_env(home: Path) -> dict[str, str]:
    """No virtualenv, no Python path: the bundle must bring everything it needs."""
    return {"PATH": "/usr/bin:/bin", "PYTHONPATH": "", "VIRTUAL_ENV": "", "MIST_HOME": str(home)}


def test_the_bundle_starts_with_no_python_around_and_no_slow_fallbacks(bundle: Path, tmp_path: Path) -> None:
    result = subprocess.run([bundle / "mist", "--help"], capture_output=True, text=True, env=bare_env(tmp_path))
    assert result.returncode == 0 and "Usage: mist" in result.stdout, result.stderr
    assert result.stderr == ""  # e.g. pyfastcdc's warning that it fell back to pure Python


def test_the_bundle_logs_in_and_installs_a_game_from_a_real_server(
    bundle: Path, server: Server, admin: Person, tmp_path: Path
) -> None:
    tree = make_tree(tmp_path / "build", seed=161, small_files=8, large=(1 * MB,))
    admin.run("mistpipe", "new-game", "bundled", "--title", "Bundled")
    admin.run("mistpipe", "push", "bundled", str(tree), "--version", "1")
    admin.run("mistpipe", "user", "add", "bo", env={"MIST_PASSWORD": FRIEND_PASSWORD})
    bo = Person(tmp_path / "bo-home", FRIEND_PASSWORD, bin=bundle)
    env = bare_env(bo.home)
    bo.run("mist", "login", server.url, "--user", "bo", env=env)
    assert [g["slug"] for g in bo.json("mist", "ls", env=env)["games"]] == ["bundled"]
    bo.run("mist", "install", "bundled", "--dir", str(tmp_path / "game"), env=env)
    assert_same_tree(tree, tmp_path / "game")
    assert bo.json("mist", "verify", "bundled", env=env)["files_bad"] == []
