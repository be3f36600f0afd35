import gc
import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before any QApplication exists

import pytest

RUN_TIMEOUT_MS = 60_000   # how long a test waits for a tiny run, a corpus or a checkpoint on a busy 2-core machine


@pytest.fixture
def settings(tmp_path):
    """A settings file of the test's own, so nothing reads or writes the user's QSettings."""
    from PySide6.QtCore import QSettings
    return QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)


def open_window(qtbot, settings):
    """The main window on `settings`, shown, with its first corpus loaded; closing it discards without asking."""
    from PySide6.QtWidgets import QMessageBox

    from app.main_window import MainWindow
    w = MainWindow(settings)
    qtbot.addWidget(w)
    w.ask_save_on_close = lambda: QMessageBox.Discard
    w.show()
    qtbot.waitUntil(lambda: not w.panel.corpus_box.is_loading(), timeout=RUN_TIMEOUT_MS)   # the first corpus
    return w


@pytest.fixture
def window(qtbot, settings):
    w = open_window(qtbot, settings)
    yield w
    w.shutdown_run()


@pytest.fixture(autouse=True)
def collect_qt_garbage():
    """Free each test's windows in one full collection right after it, once qtbot has closed them.
    Left to the generational collector, a discarded window can be freed piecemeal in the middle of a later test:
    some pyqtgraph/QGraphics items go before their scene, and the scene's next posted event calls into a dead
    item (seen under gdb: a pure virtual call in QGraphicsItemPrivate::effectiveBoundingRect; the settings,
    run_gui and worker-batching tests together crashed 13 times in 25 without this, 0 in 20 with it)."""
    yield
    gc.collect()
