"""The client's settings are read once from the environment when `mist` or `mistpipe` starts; a value it
cannot use stops the command with a message naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from client import crashpoints
from client.settings import ClientSettings
from shared.errors import SettingsError


def test_an_empty_environment_gives_the_defaults() -> None:
    assert ClientSettings.from_env({}) == ClientSettings()


def test_every_variable_reaches_its_field(tmp_path: Path) -> None:
    settings = ClientSettings.from_env(
        {
            "MIST_HOME": str(tmp_path / "h"),
            "MIST_PASSWORD": "pw-1234567",
            "MIST_LOG_FORMAT": "JSON",
            "MIST_PEER_LOOPBACK": "1",
            "MIST_CRASH_AT": "mid-swap",
            "MIST_PEER_GRACE": "45",
            "MIST_INSTALL_WINDOW": "512",
        }
    )
    assert settings == ClientSettings(tmp_path / "h", "pw-1234567", "json", True, "mid-swap", 45.0, 512_000_000)
    assert settings.home() == tmp_path / "h" and (tmp_path / "h").is_dir()
    assert "pw-1234567" not in repr(settings)


@pytest.mark.parametrize(
    "name, value, said",
    [
        ("MIST_LOG_FORMAT", "xml", "'json' or 'text'"),
        ("MIST_PEER_LOOPBACK", "yes", "be 1 .offer 127.0.0.1"),
        ("MIST_CRASH_AT", "mid-swop", "be one of undo-sealed"),
        ("MIST_PEER_GRACE", "soon", "be a number of seconds from 0 to 3600"),
        ("MIST_PEER_GRACE", "-1", "be a number of seconds from 0 to 3600"),
        ("MIST_INSTALL_WINDOW", "4G", "be a whole number of MB from 1 to 1048576"),
        ("MIST_INSTALL_WINDOW", "0", "be a whole number of MB from 1 to 1048576"),
    ],
)
def test_a_value_it_cannot_use_is_refused_naming_the_variable(name: str, value: str, said: str) -> None:
    with pytest.raises(SettingsError, match=f"{name} must .*{said}"):
        ClientSettings.from_env({name: value})


@pytest.mark.parametrize(
    "module, name, field, value",
    [("swarm", "CONNECT_GRACE", "peer_grace", 45.0), ("assembly", "WINDOW_BYTES", "install_window", 8_000_000)],
)
def test_the_wait_for_friends_and_the_download_window_are_set_for_the_whole_process(
    monkeypatch: pytest.MonkeyPatch, module: str, name: str, field: str, value: float
) -> None:
    import importlib

    target = importlib.import_module(f"client.{module}")
    monkeypatch.setattr(target, name, getattr(target, name))  # put back after the test
    ClientSettings(**{field: value}).arm()
    assert getattr(target, name) == value
    ClientSettings().arm()  # unset: left as it is
    assert getattr(target, name) == value


def test_only_a_known_crash_point_can_be_armed() -> None:
    with pytest.raises(ValueError, match="no crash point 'mid-swop'"):
        crashpoints.arm("mid-swop")


def test_a_bad_value_refuses_the_command_but_not_its_help(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "MIST_HOME": str(tmp_path), "MIST_PEER_LOOPBACK": "maybe"}
    mist = Path(sys.executable).parent / "mist"
    helped = subprocess.run([mist, "install", "--help"], env=env, capture_output=True, text=True)
    assert helped.returncode == 0 and "Usage:" in helped.stdout, helped.stderr
    refused = subprocess.run([mist, "ls"], env=env, capture_output=True, text=True)
    assert refused.returncode == 1 and "MIST_PEER_LOOPBACK" in refused.stderr, refused.stderr
