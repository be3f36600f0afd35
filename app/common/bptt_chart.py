"""‖∂L/∂h_t‖ per time step on a logarithmic axis, and the chooser for whose loss flows back. Shared by the Inside
tab's gradient page and the Graph tab's RNN strip.

Log axis because the interesting range spans many orders of magnitude (a trained tanh RNN's gradient from the last
position's loss falls below 1e-15 within 60 steps); on a linear axis everything but the last few bars is 0."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSpinBox, QWidget

LAST, ONE, MEAN = "the last position's loss", "one position's loss:", "the mean loss (all positions)"


class LossChoice(QWidget):
    """Whose loss flows back: the last position's (default), one chosen position's, or the mean over positions.
    `value()` is "last", "mean" or a position 1..n; `changed` fires on every user change."""
    changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.mode = QComboBox()
        self.mode.addItems([LAST, ONE, MEAN])
        self.mode.setToolTip("L in ‖∂L/∂h_t‖. One position's loss reaches earlier h_t only back through the "
                             "recurrence, so vanishing shows; with the mean every h_t also gets its own direct term")
        self.position = QSpinBox()
        self.position.setPrefix("t = ")
        self.position.setRange(1, 1)
        self.position.setEnabled(False)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(QLabel("Backpropagate"))
        lay.addWidget(self.mode)
        lay.addWidget(self.position)
        self.mode.currentIndexChanged.connect(self._mode_changed)
        self.position.valueChanged.connect(lambda _: self.changed.emit())

    def set_positions(self, n: int) -> None:
        """The text has n positions with a next token (without firing `changed`)."""
        self.position.blockSignals(True)
        self.position.setRange(1, max(1, n))
        self.position.blockSignals(False)

    def value(self):
        mode = self.mode.currentText()
        return "last" if mode == LAST else "mean" if mode == MEAN else self.position.value()

    def _mode_changed(self) -> None:
        self.position.setEnabled(self.mode.currentText() == ONE)
        self.changed.emit()


def describe_loss(loss_at, n: int) -> str:
    if loss_at == "mean":
        return f"L = mean loss over all {n} positions"
    t = n if loss_at == "last" else int(loss_at)
    return f"L = the loss at position {t} (predicting token {t + 1})"


def log_span(series: list[np.ndarray]) -> tuple[float, float]:
    """(low, high) in log10 units covering every positive value of every series, in whole decades."""
    positive = [np.log10(s[s > 0]) for s in series if np.any(s > 0)]
    if not positive:
        return -1.0, 1.0
    lo = min(float(p.min()) for p in positive)
    hi = max(float(p.max()) for p in positive)
    return np.floor(lo) - 0.5, max(np.ceil(hi), np.floor(lo) + 1)


def underflow_note(norms: np.ndarray, loss_at) -> str:
    """Zeros before the loss position are not "no dependence" but a gradient below float64's ~1e-308."""
    before = norms if loss_at == "mean" else norms[:len(norms) if loss_at == "last" else int(loss_at)]
    zeros = np.flatnonzero(before == 0)
    if not len(zeros):
        return ""
    return f"t = 1…{zeros.max() + 1}: below 1e-308, float64's smallest number (underflow), so no bar"


class BPTTChart(pg.PlotWidget):
    """Bars of ‖∂L/∂h_t‖ for t = 1..T on a log axis; zeros (h_t after the loss position, which the loss does not
    depend on) are left out and said so in the title."""

    def __init__(self, color: str = "#ef6c00", height: int = 150):
        super().__init__(background="w")
        self.setMinimumHeight(height)
        self.setLabel("bottom", "time step t")
        self.setLabel("left", "‖∂L/∂h_t‖")
        self.getAxis("left").setLogMode(True)     # ticks read 10^k; the bars are drawn in log10 units
        self.getAxis("left").enableAutoSIPrefix(False)
        self.setMouseEnabled(False, False)
        self.setMenuEnabled(False)
        self.color = color
        self.bars = pg.BarGraphItem(x=[], y0=[], y1=[], width=0.8, brush=color)
        self.addItem(self.bars)
        self.norms = np.zeros(0)
        self.title = ""

    def show_norms(self, norms: np.ndarray, title: str = "", span: tuple[float, float] | None = None) -> None:
        """span: the (low, high) log10 range to draw, so that two charts side by side share one scale (default:
        this one's own bars)."""
        self.norms = np.asarray(norms, dtype=float)
        t = np.flatnonzero(self.norms > 0)
        logs = np.log10(self.norms[t]) if len(t) else np.zeros(0)
        floor, top = span if span is not None else log_span([self.norms])
        self.bars.setOpts(x=t + 1, y0=np.full(len(t), floor), y1=logs, width=0.8, brush=self.color)
        self.setYRange(floor, top, padding=0.02)
        self.setXRange(0.4, len(self.norms) + 0.6, padding=0)
        self.title = title
        self._show_title()

    def _show_title(self) -> None:
        """The title elided to the chart's width: pyqtgraph gives a title the minimum width of its whole text,
        which pushed the plot past a narrow view's right edge (two charts side by side at 1280 px)."""
        font = QFont()
        font.setPointSize(9)
        shown = QFontMetrics(font).elidedText(self.title, Qt.ElideRight, max(40, self.width() - 70))
        self.setTitle(shown, size="9pt")
        self.setToolTip(self.title if shown != self.title else "")

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if getattr(self, "title", ""):
            self._show_title()

    def bar_tops(self) -> np.ndarray:
        """The drawn bars' tops, back in gradient units (for tests: what the chart shows)."""
        return 10 ** np.asarray(self.bars.opts["y1"], dtype=float)
