"""The node inspector beside the graph: a node's value and gradient as pictures (heatmap for matrices, bars for
vectors, a number for scalars) with exact statistics, its forward and backward rule, and a finite-difference
check of its backward rule. For an attention-softmax node the value and its gradient are shown one head at a time, as
matrices with the tokens on both axes.

The panel is a narrow pane (about a quarter of the Graph tab), so every row is built to shrink to its width:
labels wrap and the plots give up width rather than set the pane's minimum, so no horizontal scrolling is needed.

Big tensors are shrunk for display only (block means); statistics, the hover read-out and the number list always
come from the full float64 array."""
from __future__ import annotations

import math
from html import escape

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QScrollArea, QSpinBox,
                               QVBoxLayout, QWidget)

from app.graph.rule_text import readable

MAX_PIXELS = 192          # heatmap side shown; a longer axis is averaged down in blocks
MAX_BARS = 256            # bars shown for a vector
MAX_LISTED = 64           # entries printed in full
FD_PASS = 1e-6            # relative error below which a backward rule agrees with finite differences
DIVERGING = pg.ColorMap([0.0, 0.5, 1.0], [(33, 102, 172), (247, 247, 247), (178, 24, 43)])
SEQUENTIAL = pg.colormap.get("viridis")


def as_matrix(a: np.ndarray) -> np.ndarray:
    """Rows × last axis; leading axes (heads, time) are stacked as rows."""
    return a.reshape(1, -1) if a.ndim == 1 else a.reshape(-1, a.shape[-1])


def shrink(m: np.ndarray, limit: int = MAX_PIXELS) -> np.ndarray:
    """Block-mean a matrix down to at most `limit` per side (−∞ from the causal mask counts as 0 here)."""
    m = np.where(np.isfinite(m), m, 0.0)
    for axis in (0, 1):
        n = m.shape[axis]
        if n > limit:
            f = -(-n // limit)
            pad = [(0, 0), (0, 0)]
            pad[axis] = (0, f * (-(-n // f)) - n)
            m = np.pad(m, pad, constant_values=np.nan)
            shape = (m.shape[0] // f, f, m.shape[1]) if axis == 0 else (m.shape[0], m.shape[1] // f, f)
            m = np.nanmean(m.reshape(shape), axis=axis + 1)
    return m


def index_ticks(n: int, scale: float = 1.0, offset: float = 0.0) -> list[tuple[float, str]]:
    """Ticks at whole element indices 0, k, 2k… (k = 1, 2, 5, 10, 20… so there are at most about 8) for an axis
    of n elements, where element e is drawn at e * scale + offset: an index 1.5 means nothing."""
    step = 1
    while n / step > 8:
        step = step * 5 // 2 if str(step)[0] == "2" else step * 2
    return [(e * scale + offset, str(e)) for e in range(0, n, step)]


def stats(a: np.ndarray) -> str:
    """One line of exact statistics; each name stays with its number (no-break space) when the line wraps."""
    f = a[np.isfinite(a)] if a.dtype.kind == "f" else a
    if a.ndim == 0:
        return f"{float(a):.10g}"
    if f.size == 0:
        return "no finite entries"
    parts = [f"min {f.min():.6g}", f"max {f.max():.6g}", f"mean {f.mean():.6g}", f"‖·‖ {np.linalg.norm(f):.6g}"]
    if f.size < a.size:
        parts.append(f"{a.size - f.size} masked (−∞)")
    return " · ".join(p.replace(" ", "\u00a0") for p in parts)


class TensorView(QWidget):
    """One array: a header with its statistics and a plot; `array` is the exact array last shown."""

    def __init__(self, title: str):
        super().__init__()
        self.title = title
        self.array: np.ndarray | None = None
        self.header = QLabel()
        self.header.setWordWrap(True)
        self.scalar = QLabel()
        font = QFont()
        font.setPointSize(16)
        self.scalar.setFont(font)
        self.scalar.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setFixedHeight(200)
        for name in ("left", "bottom"):
            axis = self.plot.getAxis(name)
            axis.setPen("#90a4ae")
            axis.setTextPen("#37474f")
        self.plot.invertY(True)
        self.plot.setMenuEnabled(False)
        self.image = pg.ImageItem()
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.8)
        self.plot.addItem(self.image)
        self.plot.addItem(self.bars)
        self.colorbar = pg.ColorBarItem(colorMap=DIVERGING, interactive=False, width=12)
        self.colorbar.setImageItem(self.image, insert_in=self.plot.getPlotItem())
        self.plot.getPlotItem().layout.setContentsMargins(2, 8, 2, 2)   # the colour bar's top label sits on the edge
        self.hover = QLabel(" ")
        self.hover.setWordWrap(True)   # "gradient ∂J/∂value[0, 10, 3] = …" is wider than the pane
        self.hover.setStyleSheet("color: #455a64")
        self.plot.scene().sigMouseMoved.connect(self._hovered)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        for w in (self.header, self.scalar, self.plot, self.hover):
            lay.addWidget(w)
        self._matrix = self._shown = None

    def show_array(self, a: np.ndarray | None, empty: str, tokens: list[str] | None = None,
                   probabilities: bool = False) -> None:
        """Draw `a`; `tokens` (attention) labels both axes; `probabilities` uses a 0..1 colour scale instead of one
        centred on 0."""
        self.array = a
        self._matrix = None
        if a is None:
            self.header.setText(f"<b>{self.title}</b>: {empty}")
            self._use(None)
            return
        self.header.setText(f"<b>{self.title}</b> {'×'.join(map(str, a.shape)) or 'scalar'}: {stats(a)}")
        if a.ndim == 0:
            self.scalar.setText(f"{float(a):.10g}")
            self._use(self.scalar)
            return
        self._use(self.plot)
        self.hover.setText("hover for exact values")
        values = a.astype(np.float64)
        left, bottom = self.plot.getAxis("left"), self.plot.getAxis("bottom")
        left.setTicks(None)
        bottom.setTicks(None)
        if a.ndim == 1:
            self._show_bars(values)
            return
        self._matrix = as_matrix(values)
        self._shown = shrink(self._matrix)
        self.bars.hide()
        self.image.show()
        self.colorbar.show()
        if probabilities:
            self.colorbar.setColorMap(SEQUENTIAL)
            self.colorbar.setLevels((0.0, 1.0))
        else:
            self.colorbar.setColorMap(DIVERGING)
            top = float(np.abs(self._shown).max()) or 1.0
            self.colorbar.setLevels((-top, top))
        if tokens is not None:     # every token while they fit (about 13 px a row, 9 px a column), else every k-th
            for axis, room in ((left, self.plot.height() / 13), (bottom, self.plot.width() / 9)):
                k = max(1, math.ceil(len(tokens) / max(room, 1)))
                axis.setTicks([[(i + 0.5, t) for i, t in enumerate(tokens) if i % k == 0]])
        else:
            (rows, cols), (shown_rows, shown_cols) = self._matrix.shape, self._shown.shape
            left.setTicks([index_ticks(rows, shown_rows / rows, 0.5 * shown_rows / rows)])    # pixel centres
            bottom.setTicks([index_ticks(cols, shown_cols / cols, 0.5 * shown_cols / cols)])
        self.image.setImage(self._shown.T, autoLevels=False)   # ImageItem's first axis is x: columns
        self.plot.invertY(True)
        self.plot.autoRange()

    def _use(self, widget: QWidget | None) -> None:
        """Show the scalar label, the plot (with its hover line) or neither."""
        self.scalar.setVisible(widget is self.scalar)
        self.plot.setVisible(widget is self.plot)
        self.hover.setVisible(widget is self.plot)

    def _show_bars(self, v: np.ndarray) -> None:
        self.image.hide()
        self.colorbar.hide()
        shown = shrink(v.reshape(1, -1), MAX_BARS)[0]
        step = len(v) / len(shown)
        self.bars.setOpts(x=np.arange(len(shown)) * step, height=shown, width=0.8 * step,
                          brushes=[pg.mkBrush("#c62828" if h > 0 else "#1565c0") for h in shown], pen=None)
        self.bars.show()
        self.plot.getAxis("bottom").setTicks([index_ticks(len(v))])
        self.plot.invertY(False)
        self.plot.autoRange()

    def _hovered(self, pos) -> None:
        """Exact value of the entry under the cursor, from the full array (not the shrunk picture)."""
        if self.array is None or self.array.ndim == 0:
            return
        p = self.plot.getPlotItem().vb.mapSceneToView(pos)
        if self._matrix is not None:
            rows, cols = self._matrix.shape
            r = int(p.y() * rows / self._shown.shape[0])
            c = int(p.x() * cols / self._shown.shape[1])
            if 0 <= r < rows and 0 <= c < cols and p.x() >= 0 and p.y() >= 0:
                idx = np.unravel_index(r * cols + c, self.array.shape)
                self.hover.setText(f"{self.title}{[int(i) for i in idx]} = {self.array[idx]:.10g}")
        else:
            i = int(round(p.x()))
            if 0 <= i < self.array.size:
                self.hover.setText(f"{self.title}[{i}] = {self.array[i]:.10g}")


class NodeInspector(QScrollArea):
    """Shows one node of the program the graph panel is stepping; `refresh()` after each step that touched it."""

    fd_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.program = self.stepper = None
        self.node_id: int | None = None
        self.attention = False      # the node is attention weights (heads × T × T): shown one head at a time
        body = QWidget()
        self.title = QLabel("Click a node to inspect it.")
        self.title.setWordWrap(True)
        self.rules = QLabel()
        self.rules.setWordWrap(True)
        self.rules.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.head = QSpinBox()
        self.head.setPrefix("head ")
        self.head.setToolTip("The attention head whose weights and gradient are shown")
        self.head_row = QWidget()
        hr = QHBoxLayout(self.head_row)
        hr.setContentsMargins(0, 0, 0, 0)
        about = QLabel("One head at a time — rows: queries, columns: keys")
        about.setWordWrap(True)
        hr.addWidget(about, 1)
        hr.addWidget(self.head, 0, Qt.AlignTop)
        self.value_view = TensorView("value")
        self.grad_view = TensorView("gradient ∂J/∂value")
        self.fd_button = QPushButton("Finite-difference check")
        self.fd_button.setToolTip("Compare this node's backward rule with central differences of its forward rule")
        self.fd_result = QLabel()
        self.fd_result.setWordWrap(True)
        self.numbers = QPlainTextEdit()
        self.numbers.setReadOnly(True)
        self.numbers.setMaximumHeight(140)
        self.numbers.setFont(QFont("monospace", 8))
        self.numbers.setLineWrapMode(QPlainTextEdit.NoWrap)   # rows are wrapped by numpy, to the pane's width
        lay = QVBoxLayout(body)
        for w in (self.title, self.rules, self.head_row, self.value_view, self.grad_view, self.fd_button,
                  self.fd_result, self.numbers):
            lay.addWidget(w)
        lay.addStretch(1)
        self.setWidget(body)
        self.setWidgetResizable(True)
        self.setMinimumWidth(340)
        self.fd_button.clicked.connect(lambda: self.node_id is not None and self.fd_requested.emit(self.node_id))
        self.head.valueChanged.connect(lambda _: self.refresh())
        self.show_node(None)

    def set_program(self, program, stepper) -> None:
        self.program, self.stepper = program, stepper
        self.show_node(None)

    def _rule_names(self, n) -> str:
        """Which node each symbol of the rules is: the rules are the op's, written once (Linear's b = a ωᵀ), and
        the lecture names its own values a, b too, so 'a' on screen could mean two things."""
        symbols = n.module.rule_symbols() if n.kind == "op" and n.module is not None else None
        if symbols is None:
            return ""
        args = [f"{sym} = {escape(self.program.nodes[i].label)}" for sym, i in zip(symbols[0], n.inputs)]
        return (f"<br><span style='color:#607d8b'>here: {', '.join(args)}; {symbols[1]} = this node's value"
                f"</span>")

    def show_node(self, node_id: int | None) -> None:
        self.node_id = node_id
        self.fd_result.setText("")
        for w in (self.rules, self.value_view, self.grad_view, self.fd_button, self.numbers, self.head_row):
            w.setVisible(node_id is not None)
        if node_id is None:
            self.title.setText("Click a node in the graph to see its value, its gradient and its rules.")
            return
        n = self.program.nodes[node_id]
        self.title.setText(f"<b>{n.label}</b> — {n.op} ({n.kind}), shape {'×'.join(map(str, n.shape)) or 'scalar'}"
                           f"<br><span style='color:#607d8b'>{n.group or 'no group'}"
                           f"{' · ' + n.name if n.name else ''}</span>")
        self.rules.setText(f"<b>forward</b>: {readable(n.fwd_rule)}<br><b>backward</b>: {readable(n.bwd_rule)}"
                           + self._rule_names(n))
        self.fd_button.setVisible(n.kind == "op")
        self.attention = n.op == "Softmax" and "attention" in n.group and len(n.shape) == 3
        self.head_row.setVisible(self.attention)
        if self.attention:
            self.head.setRange(0, n.shape[0] - 1)
        self.refresh()

    def refresh(self) -> None:
        """Re-read the node's current value and gradient (after a step, step back or reset)."""
        if self.node_id is None:
            return
        n = self.program.nodes[self.node_id]
        value, grad = n.value, n.grad
        no_value = "not computed yet — step the forward pass to this node"
        no_grad = ("none kept: a constant (token ids, targets, a fixed table), not something the loss is "
                   "differentiated with respect to" if not n.differentiable else
                   "no gradient yet — the backward pass has not reached this node")
        if self.attention:   # one head; its gradient follows the value's head and token labels
            h = self.head.value()
            tokens = self.program.tokens[: n.shape[-1]] or None
            self.value_view.show_array(None if value is None else value[h], no_value, tokens, probabilities=True)
            self.grad_view.show_array(None if grad is None else grad[h], no_grad, tokens)
        else:
            self.value_view.show_array(value, no_value)
            self.grad_view.show_array(grad, no_grad)
        lines = []
        chars = (self.viewport().width() - 40) // QFontMetrics(self.numbers.font()).horizontalAdvance("0")
        for name, a in (("value", value), ("gradient", grad)):
            if a is not None and a.size <= MAX_LISTED:
                lines.append(f"{name} =\n{np.array2string(a, precision=10, max_line_width=max(chars, 30))}")
        self.numbers.setPlainText("\n".join(lines))
        self.numbers.setVisible(bool(lines))

    def set_fd_result(self, node_id: int, rel_error: float | None, message: str = "") -> None:
        if node_id != self.node_id:
            return
        if rel_error is None:
            self.fd_result.setText(f"Finite-difference check: {message}")
        elif rel_error < FD_PASS:
            self.fd_result.setText(f"<span style='color:#2e7d32'>✓ pass</span>: relative error {rel_error:.2e} "
                                   f"(backward rule agrees with finite differences, below {FD_PASS:.0e})")
        else:
            self.fd_result.setText(f"<span style='color:#c62828'>✗ fail</span>: relative error {rel_error:.2e} "
                                   f"(above {FD_PASS:.0e})")
