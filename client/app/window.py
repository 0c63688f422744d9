"""The Mist window: pywebview showing the daemon's pages (GTK + WebKitGTK on Linux, its own backends elsewhere).

This is the one module that imports webview. The pages do not use its
JavaScript bridge, so any browser (or a Tauri shell later) shows the same app.
`unavailable` says in one line why there can be no window here, so `mist app`
can say it and open the browser instead.
"""

from __future__ import annotations

import os
import sys

TITLE = "Mist"
SIZE = (1100, 720)
MIN_SIZE = (800, 600)


def unavailable() -> str | None:
    """Why no window can open here, or None if one can."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no graphical display here (DISPLAY is not set)"
    try:
        import webview  # noqa: F401
    except ImportError:
        return "no window toolkit installed (pip install 'mist[app]' adds pywebview)"
    if sys.platform.startswith("linux"):
        try:
            import gi

            gi.require_version("Gtk", "3.0")
            gi.require_version("WebKit2", "4.1")
            from gi.repository import Gtk, WebKit2  # noqa: F401
        except (ImportError, ValueError) as exc:
            return (
                f"no GTK WebKit for the window ({exc}); install gir1.2-webkit2-4.1 and PyGObject "
                "(Debian: apt-get install gir1.2-webkit2-4.1 python3-gi)"
            )
    return None


def show(url: str) -> None:
    """Open the window on `url` and return when the friend closes it."""
    import webview

    webview.create_window(TITLE, url, width=SIZE[0], height=SIZE[1], min_size=MIN_SIZE, text_select=True)
    webview.start(gui="gtk" if sys.platform.startswith("linux") else None, private_mode=True)
