"""Desktop integration without a desktop: the commands each system gets, and the desktop files' text."""

from __future__ import annotations

from pathlib import Path

import pytest

from client.app import desktop


def test_each_system_gets_its_own_notification_command_with_the_text_as_data() -> None:
    title, body = 'Mist "1"', "Hollow Knight 1.1 is out; $(rm -rf ~)"
    argv, env = desktop.notify_command(title, body, "linux", lambda name: "/usr/bin/notify-send")  # type: ignore[misc]
    assert argv[0] == "/usr/bin/notify-send" and argv[-2:] == [title, body] and env == {}
    assert desktop.notify_command(title, body, "linux", lambda name: None) is None  # no libnotify: the app's list only
    argv, env = desktop.notify_command(title, body, "darwin")  # type: ignore[misc]
    assert argv[:2] == ["osascript", "-e"] and argv[-2:] == [title, body] and body not in argv[2]
    argv, env = desktop.notify_command(title, body, "win32")  # type: ignore[misc]
    assert argv[0] == "powershell" and env == {"MIST_NOTICE_TITLE": title, "MIST_NOTICE_BODY": body}
    assert body not in " ".join(argv)


def test_a_folder_opens_in_each_systems_file_manager() -> None:
    folder = Path("/games/hollow knight")
    assert desktop.open_folder_command(folder, "win32") == ["explorer", str(folder)]
    assert desktop.open_folder_command(folder, "darwin") == ["open", str(folder)]
    assert desktop.open_folder_command(folder, "linux", lambda n: "/usr/bin/xdg-open") == ["/usr/bin/xdg-open", str(folder)]
    assert desktop.open_folder_command(folder, "linux", lambda n: None) is None


def test_desktop_entries_quote_their_command_and_land_in_the_xdg_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = desktop.desktop_entry(['/opt/my games/mist', "app", '50%"$x'], Path("/icons/mist.svg"))
    assert 'Exec="/opt/my games/mist" app "50%%\\"\\$x"' in text and "Icon=/icons/mist.svg" in text
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    entry = desktop.install_desktop_entry()
    assert entry == tmp_path / "data" / "applications" / "mist.desktop"
    assert "Exec=" in entry.read_text() and (tmp_path / "data" / "icons" / "hicolor" / "scalable" / "apps" / "mist.svg").exists()
    autostart = desktop.set_autostart(True)
    assert autostart is not None and autostart.exists() and " daemon" in autostart.read_text()
    desktop.set_autostart(False)
    assert not autostart.exists()


def test_mist_app_install_desktop_entry_writes_the_launcher(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "MIST_HOME": str(tmp_path / "home")}
    done = subprocess.run([Path(sys.executable).parent / "mist", "app", "--install-desktop-entry"], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    entry = tmp_path / "data" / "applications" / "mist.desktop"
    assert str(entry) in done.stdout and "Exec=" in entry.read_text() and " app" in entry.read_text()
