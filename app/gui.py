"""Entry point of the desktop app: `run_gui(argv)` makes the QApplication and the main window and runs the loop."""
from __future__ import annotations

import ctypes
import logging
import sys
from pathlib import Path

from PySide6.QtWidgets import QApplication

STYLE = Path(__file__).resolve().parents[1] / "resources" / "style.qss"
log = logging.getLogger(__name__)


def keep_none_alive() -> None:
    """Work around a binding bug that otherwise kills the app within a minute of training.

    PySide6 6.12's stable-ABI build returns None from void methods (setText, QTimer.start, every QPainter call)
    without taking a reference. On CPython 3.12+ None is immortal and nothing happens; on 3.11 each call lowers
    None's reference count by one, and after some 10^4 calls (a few seconds of live plotting) CPython aborts with
    "none_dealloc: deallocating None". Raising the count by 2^40 makes None as good as immortal, as 3.12 does.
    The real fix is Python >= 3.12 or a PySide6 without the bug; this only runs where it is needed."""
    if sys.version_info >= (3, 12) or getattr(keep_none_alive, "done", False):
        return
    refcnt = ctypes.c_ssize_t.from_address(id(None))   # ob_refcnt is the first field of every object
    if refcnt.value != sys.getrefcount(None) - 1:       # not the layout we expect (a debug build): leave it
        log.warning("cannot apply the None reference-count workaround on this Python build")
        return
    refcnt.value += 1 << 40
    keep_none_alive.done = True


def run_gui(argv: list[str]) -> int:
    keep_none_alive()
    app = QApplication.instance() or QApplication([sys.argv[0], *argv])
    app.setOrganizationName("LM Playground")
    app.setApplicationName("LM Playground")
    if STYLE.exists():
        app.setStyleSheet(STYLE.read_text(encoding="utf-8"))
    from .main_window import MainWindow   # after QApplication: pyqtgraph widgets need it
    window = MainWindow()
    window.show()
    return app.exec()
