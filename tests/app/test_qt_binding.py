"""PySide6-Essentials 6.12.0 on CPython 3.11 drops a reference to None on every call of a Qt method that returns
nothing; after a few thousand calls (a live plot, a playing graph) the interpreter aborts with `none_dealloc`.
pyproject.toml excludes that release; this test catches any binding that brings the leak back."""
import sys

from PySide6.QtWidgets import QLabel


def test_void_qt_calls_do_not_leak_none(qtbot):
    label = QLabel("x")
    qtbot.addWidget(label)
    before = sys.getrefcount(None)
    for _ in range(200):
        label.setToolTip("x")
    assert abs(sys.getrefcount(None) - before) < 50
