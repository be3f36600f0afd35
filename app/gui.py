"""Entry point of the desktop app: `run_gui(argv)` makes the QApplication and the main window and runs the loop."""
from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtWidgets import QApplication

STYLE = Path(__file__).resolve().parents[1] / "resources" / "style.qss"


def run_gui(argv: list[str]) -> int:
    app = QApplication.instance() or QApplication([sys.argv[0], *argv])
    app.setOrganizationName("LM Playground")
    app.setApplicationName("LM Playground")
    if STYLE.exists():
        app.setStyleSheet(STYLE.read_text(encoding="utf-8"))
    from app.main_window import MainWindow   # after QApplication: pyqtgraph widgets need it
    window = MainWindow()
    window.show()
    return app.exec()
