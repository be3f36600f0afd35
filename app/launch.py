"""Start the GUI, or explain why it cannot start. Qt's own message when there is no display (or when an xcb
library is missing) names libxcb-cursor and aborts the process; we check first and say what to do."""
from __future__ import annotations

import ctypes.util
import os
import sys

XCB_DEBIAN_PACKAGES = {"xcb-icccm": "libxcb-icccm4", "xcb-keysyms": "libxcb-keysyms1"}


def display_problem(env: dict[str, str] | None = None, find_library=ctypes.util.find_library) -> str | None:
    """Return a one-paragraph reason the window cannot open here, or None when it can."""
    env = os.environ if env is None else env
    platform = env.get("QT_QPA_PLATFORM", "")
    if platform.startswith(("offscreen", "minimal", "vnc", "wayland", "eglfs")) or not sys.platform.startswith("linux"):
        return None
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        return ("No display found, so the window cannot open. On a machine without a screen, run it on a virtual one:\n"
                "    apt-get install -y xvfb libxcb-icccm4 libxcb-keysyms1\n"
                "    xvfb-run -a -s \"-screen 0 1600x1000x24\" make run\n"
                "or use the headless commands: python main.py train --help")
    missing = [pkg for lib, pkg in XCB_DEBIAN_PACKAGES.items() if find_library(lib) is None]
    if env.get("DISPLAY") and missing:
        return ("Qt's X11 platform needs system libraries that are missing. Install them with:\n"
                f"    apt-get install -y {' '.join(missing)}")
    return None


def launch(argv: list[str]) -> int:
    problem = display_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    from app.gui import run_gui
    return run_gui(argv)
