"""The desktop around the app: notifications, the applications-menu launcher, and starting with the system.

Notifications use what each system has without extra packages: `notify-send`
(libnotify) on Linux, `osascript` on macOS, a PowerShell balloon tip on
Windows. Where none is there the notice still shows in the app. The texts go
to the command as arguments or environment values, never spliced into a
script. The launcher and the autostart entry are XDG desktop files (Linux); on
Windows and macOS the README says how to do the same by hand.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path

APP_ID = "mist"
DESKTOP_NAME = "mist.desktop"
AUTOSTART_NAME = "mist-daemon.desktop"
NOTIFY_TIMEOUT = 15.0

_POWERSHELL_BALLOON = (
    "Add-Type -AssemblyName System.Windows.Forms; $n = New-Object System.Windows.Forms.NotifyIcon; "
    "$n.Icon = [System.Drawing.SystemIcons]::Information; $n.Visible = $true; "
    "$n.ShowBalloonTip(8000, $env:MIST_NOTICE_TITLE, $env:MIST_NOTICE_BODY, 'Info'); Start-Sleep 9; $n.Dispose()"
)


def notify_command(
    title: str, body: str, platform: str = sys.platform, find: Callable[[str], str | None] = shutil.which
) -> tuple[list[str], dict[str, str]] | None:
    """The command that shows a desktop notification here, with extra environment; None where there is none."""
    if platform == "darwin":
        script = "on run argv\ndisplay notification (item 2 of argv) with title (item 1 of argv)\nend run"
        return ["osascript", "-e", script, title, body], {}
    if platform == "win32":
        return (
            ["powershell", "-NoProfile", "-NonInteractive", "-Command", _POWERSHELL_BALLOON],
            {"MIST_NOTICE_TITLE": title, "MIST_NOTICE_BODY": body},
        )
    program = find("notify-send")
    if program is None:
        return None
    return [str(program), "--app-name=Mist", f"--icon={icon_path()}", "--", title, body], {}


async def notify(title: str, body: str) -> bool:
    """Show a desktop notification; False where this system has no way (the app's own list still has it)."""
    command = notify_command(title, body)
    if command is None:
        return False
    argv, extra = command
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            env={**os.environ, **extra},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except OSError:
        return False
    try:
        async with asyncio.timeout(NOTIFY_TIMEOUT):
            return await process.wait() == 0
    except TimeoutError:
        process.kill()
        await process.wait()
        return False


def open_folder_command(
    folder: Path, platform: str = sys.platform, find: Callable[[str], str | None] = shutil.which
) -> list[str] | None:
    """The file manager's command for a folder: Explorer, Finder, or the desktop's own (xdg-open)."""
    if platform == "win32":
        return ["explorer", str(folder)]
    if platform == "darwin":
        return ["open", str(folder)]
    program = find("xdg-open")
    return [program, str(folder)] if program else None


async def open_folder(folder: Path) -> bool:
    """Show the folder in the file manager; False where there is none to ask."""
    argv = open_folder_command(folder)
    if argv is None:
        return False
    try:
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
    except OSError:
        return False
    try:
        async with asyncio.timeout(NOTIFY_TIMEOUT):
            code = await process.wait()
    except TimeoutError:
        return True  # a file manager that stays in the foreground: it opened
    return code == 0 or sys.platform == "win32"  # Explorer exits 1 even when it opened the folder


def autostart_supported() -> bool:
    return sys.platform not in ("win32", "darwin")


def icon_path() -> Path:
    """The app's icon as a file (package data)."""
    return Path(str(resources.files("client.app") / "static" / "icon.svg"))


def mist_command() -> str:
    """The `mist` program beside this Python (a virtualenv's), else the one on PATH."""
    beside = Path(sys.executable).parent / ("mist.exe" if sys.platform == "win32" else "mist")
    if beside.exists():
        return str(beside)
    return shutil.which("mist") or "mist"


def _quoted(arg: str) -> str:
    """One argument of a desktop file's Exec line (the XDG rules: quote, and escape \\ " ` $)."""
    if arg and all(c.isalnum() or c in "/-_.=:" for c in arg):
        return arg
    escaped = "".join("\\" + c if c in '\\"`$' else c for c in arg)
    return f'"{escaped}"'


def desktop_entry(
    exec_args: list[str], icon: Path, name: str = "Mist", comment: str = "Your friends' games: install, update, play"
) -> str:
    return "\n".join(
        [
            "[Desktop Entry]",
            "Type=Application",
            f"Name={name}",
            f"Comment={comment}",
            "Exec=" + " ".join(_quoted(a).replace("%", "%%") for a in exec_args),
            f"Icon={icon}",
            "Terminal=false",
            "Categories=Game;",
            "StartupNotify=true",
            "",
        ]
    )


def xdg_data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def xdg_config_home() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")


def install_desktop_entry() -> Path:
    """Write the applications-menu launcher (and its icon) for this user; the path of the .desktop file."""
    icons = xdg_data_home() / "icons" / "hicolor" / "scalable" / "apps"
    icons.mkdir(parents=True, exist_ok=True)
    icon = icons / f"{APP_ID}.svg"
    icon.write_bytes(icon_path().read_bytes())
    target = xdg_data_home() / "applications" / DESKTOP_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(desktop_entry([mist_command(), "app"], icon), encoding="utf-8")
    return target


def set_autostart(enabled: bool) -> Path | None:
    """Start the daemon at login (XDG autostart, Linux) or stop doing so; the entry's path, None elsewhere."""
    if sys.platform in ("win32", "darwin"):
        return None
    target = xdg_config_home() / "autostart" / AUTOSTART_NAME
    if not enabled:
        target.unlink(missing_ok=True)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(
        desktop_entry(
            [mist_command(), "daemon"],
            icon_path(),
            "Mist (sharing with friends)",
            "Keeps Mist online so friends can download from you",
        ),
        encoding="utf-8",
    )
    return target
