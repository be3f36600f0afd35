"""A banner across the top of the window saying how the last run ended (finished, stopped, failed), with a button
to dismiss it. The status bar's state field alone was easy to miss after minutes of training; a dialog would block
the window and pile up when runs are started one after another, so the notice is a plain widget that stays until
dismissed or the next run starts. `first_geometry` is the first launch's window size, which fits the screen."""
from __future__ import annotations

from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget

STYLES = {"done": ("#e7f4ea", "#2e7d32"), "stopped": ("#eef1f6", "#56677f"), "error": ("#fdecee", "#b00020")}
FIRST_SIZE = QSize(1400, 900)   # the first launch's size where the screen has room for it
SCREEN_SHARE = 0.92             # at most this share of the available screen, so the frame and title bar fit too


class RunNotice(QFrame):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("runNotice")
        self.kind = ""
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.PlainText)
        self.label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.dismiss = QToolButton(text="✕")
        self.dismiss.setAutoRaise(True)
        self.dismiss.setToolTip("Dismiss this notice")
        self.dismiss.clicked.connect(self.clear)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 4, 4, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.dismiss, 0, Qt.AlignTop)
        self.hide()

    def show_notice(self, kind: str, text: str) -> None:
        """kind: done | stopped | error (the colours)."""
        background, accent = STYLES[kind]
        self.kind = kind
        self.setStyleSheet(f"#runNotice {{ background: {background}; border-left: 4px solid {accent}; }}")
        self.label.setText(text)
        self.show()

    def clear(self) -> None:
        self.kind = ""
        self.label.clear()
        self.hide()


def first_geometry(available: QRect, minimum: QSize) -> QRect:
    """The first launch's window rectangle (the inside of the window, without the frame): FIRST_SIZE where it
    fits, else SCREEN_SHARE of the available area (the screen less panels and docks), never below the window's
    minimum size; centred across, and placed down two thirds of the spare height so the title bar fits above."""
    width = max(min(FIRST_SIZE.width(), int(available.width() * SCREEN_SHARE)), minimum.width())
    height = max(min(FIRST_SIZE.height(), int(available.height() * SCREEN_SHARE)), minimum.height())
    return QRect(available.left() + max(available.width() - width, 0) // 2,
                 available.top() + max(available.height() - height, 0) * 2 // 3, width, height)
