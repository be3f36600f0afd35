"""Attention for a text: every layer × head as a small heatmap (query rows, key columns, white 0 to dark blue 1),
each with its mean entropy; clicking one enlarges it beside the grid with the tokens along both axes. Hovering
either gives the exact weight and which token attends to which."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QRect, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter
from PySide6.QtWidgets import (QGridLayout, QLabel, QScrollArea, QSplitter, QToolTip, QVBoxLayout, QWidget)

from app.common.token_view import token_label
from app.inside.scales import sequential

SMALL = 120   # px, a grid cell's heatmap side


def _short(tok: str) -> str:
    return token_label(tok)[:6]


class Heatmap(QWidget):
    """One head's (T, T) weights. With `labels`, token labels run down the left (queries) and along the top (keys)
    when there is room for them."""
    clicked = Signal(int, int)

    def __init__(self, side: int | None = None, labels: bool = False):
        super().__init__()
        self.labels = labels
        self.weights = np.zeros((0, 0))
        self.tokens: list[str] = []
        self.layer = self.head = 0
        self.image: QImage | None = None
        self.setMouseTracking(True)
        if side is not None:
            self.setFixedSize(side, side)
        else:
            self.setMinimumSize(200, 200)
        self.setCursor(Qt.PointingHandCursor if side is not None else Qt.CrossCursor)

    def set_weights(self, weights: np.ndarray, tokens: list[str], layer: int, head: int,
                    rgb: np.ndarray | None = None) -> None:
        """weights (T, T); rgb (T, T, 3) uint8 its colours when already made (on the worker thread)."""
        self.weights, self.tokens, self.layer, self.head = weights, tokens, layer, head
        rgb = np.ascontiguousarray(sequential(weights) if rgb is None else rgb)
        T = weights.shape[0]
        self._rgb = rgb          # the QImage borrows this buffer
        self.image = QImage(rgb.data, T, T, 3 * T, QImage.Format_RGB888)
        self.update()

    def _margin(self) -> int:
        return 44 if self.labels and self._cell_for(44) >= 7 else 0

    def _cell_for(self, margin: int) -> float:
        T = max(1, len(self.tokens))
        return (min(self.width(), self.height()) - margin) / T

    def plot_rect(self) -> QRect:
        m = self._margin()
        side = int(self._cell_for(m) * max(1, len(self.tokens)))
        return QRect(m, m, side, side)

    def cell_at(self, pos: QPoint) -> tuple[int, int] | None:
        r = self.plot_rect()
        if not r.contains(pos) or not self.tokens:
            return None
        T = len(self.tokens)
        q = min(T - 1, int((pos.y() - r.top()) * T / r.height()))
        k = min(T - 1, int((pos.x() - r.left()) * T / r.width()))
        return q, k

    def paintEvent(self, event) -> None:
        if self.image is None:
            return
        p = QPainter(self)
        r = self.plot_rect()
        p.drawImage(r, self.image)            # nearest-neighbour: each weight stays a crisp square
        p.setPen(QColor("#90a4ae"))
        p.drawRect(r.adjusted(0, 0, -1, -1))
        m = self._margin()
        if m:
            cell = r.width() / len(self.tokens)
            font = QFont(self.font())
            font.setPixelSize(max(7, min(12, int(cell * 0.95))))
            p.setFont(font)
            p.setPen(QColor("#263238"))
            for t, tok in enumerate(self.tokens):
                y = int(r.top() + t * cell)
                p.drawText(QRect(0, y, m - 3, int(cell) + 1), Qt.AlignRight | Qt.AlignVCenter, _short(tok))
                p.save()
                p.translate(int(r.left() + (t + 0.5) * cell), m - 3)
                p.rotate(-90)
                p.drawText(QRect(0, -int(cell / 2), m - 3, int(cell) + 1), Qt.AlignLeft | Qt.AlignVCenter,
                           _short(tok))
                p.restore()
        p.end()

    def tip_at(self, pos: QPoint) -> str | None:
        cell = self.cell_at(pos)
        if cell is None:
            return None
        q, k = cell
        w = self.weights[q, k]
        where = " (a future token: masked)" if k > q else ""
        return (f"layer {self.layer + 1}, head {self.head + 1}\nquery “{_short(self.tokens[q])}” (token {q + 1}) → "
                f"key “{_short(self.tokens[k])}” (token {k + 1})\nweight {w:.4f}{where}")

    def mouseMoveEvent(self, event) -> None:
        tip = self.tip_at(event.position().toPoint())
        if tip is None:
            QToolTip.hideText()
        else:
            QToolTip.showText(event.globalPosition().toPoint(), tip, self)

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.LeftButton:
            self.clicked.emit(self.layer, self.head)


class AttentionView(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.cells: list[Heatmap] = []
        self.titles: list[QLabel] = []
        self.grid_box = QWidget()
        self.grid = QGridLayout(self.grid_box)
        self.grid.setSpacing(8)
        self.grid.setAlignment(Qt.AlignTop | Qt.AlignLeft)   # titles stay on their maps, not spread out
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.grid_box)
        self.big = Heatmap(labels=True)
        self.big_title = QLabel("Click a head on the left to enlarge it")
        self.big_title.setWordWrap(True)
        self.big_title.setStyleSheet("font-weight: bold")
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.big_title)
        rl.addWidget(self.big, 1)
        note = QLabel("Row = the token attending (query), column = the token it reads (key); each row sums to 1. "
                      "White 0 → dark blue 1. Entropy H: 0 nats = looks at one token; ln(t) = spread evenly. "
                      "Hover any map for its tokens and the exact weight.")
        note.setWordWrap(True)
        note.setStyleSheet("color: #546e7a")
        rl.addWidget(note)
        self.split = QSplitter(Qt.Horizontal)
        self.split.addWidget(scroll)
        self.split.addWidget(right)
        self.split.setStretchFactor(0, 1)
        self.split.setStretchFactor(1, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.split)
        self.attention = None
        self.entropy = None
        self.tokens: list[str] = []

    def set_attention(self, attention: np.ndarray, entropy: np.ndarray, tokens: list[str],
                      rgb: np.ndarray | None = None) -> None:
        """attention (n_layer, n_head, T, T), entropy (n_layer, n_head) nats; rgb (n_layer, n_head, T, T, 3) uint8
        the maps' colours (scales.sequential), made on the worker thread by the panel."""
        if rgb is None:
            rgb = sequential(attention)
        self.attention, self.entropy, self.tokens, self.rgb = attention, entropy, tokens, rgb
        L, H = attention.shape[:2]
        if len(self.cells) != L * H:
            for w in self.cells + self.titles:
                w.deleteLater()
            self.cells, self.titles = [], []
            for layer in range(L):
                for head in range(H):
                    cell, title = Heatmap(SMALL), QLabel()
                    title.setAlignment(Qt.AlignCenter)
                    title.setFixedWidth(SMALL)
                    cell.clicked.connect(self.enlarge)
                    self.grid.addWidget(title, 2 * layer, head)
                    self.grid.addWidget(cell, 2 * layer + 1, head)
                    self.cells.append(cell)
                    self.titles.append(title)
        for layer in range(L):
            for head in range(H):
                k = layer * H + head
                self.cells[k].set_weights(attention[layer, head], tokens, layer, head, rgb[layer, head])
                self.titles[k].setText(f"layer {layer + 1} head {head + 1}\nH = {entropy[layer, head]:.2f} nats")
                self.titles[k].setToolTip("mean entropy of this head's attention rows, in nats")
        self._fit_grid()
        big = (self.big.layer, self.big.head) if self.big.image is not None else (0, 0)
        self.enlarge(*(big if big[0] < L and big[1] < H else (0, 0)))

    def _fit_grid(self) -> None:
        """The grid gets up to 60% of the width, its maps shrinking (down to 64 px) so every head's column fits;
        the enlarged head gets the rest. Redone on resize: a hidden page has no real width yet."""
        if self.attention is None:
            return
        H = self.attention.shape[1]
        total = max(self.width(), 400)
        side = max(64, min(SMALL, (int(0.6 * total) - 40) // H - self.grid.spacing()))
        for cell, title in zip(self.cells, self.titles):
            cell.setFixedSize(side, side)
            title.setFixedWidth(max(side, 96))
        need = min(H * (max(side, 96) + self.grid.spacing()) + 40, total - 200)
        self.split.setSizes([need, total - need])

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_grid()

    def enlarge(self, layer: int, head: int) -> None:
        self.big.set_weights(self.attention[layer, head], self.tokens, layer, head, self.rgb[layer, head])
        self.big_title.setText(f"Layer {layer + 1}, head {head + 1}: mean entropy "
                               f"{self.entropy[layer, head]:.3f} nats. Hover for the exact weight.")
        for k, cell in enumerate(self.cells):   # a font, not a style sheet: re-polishing 24 labels is slow
            font = self.titles[k].font()
            font.setBold((cell.layer, cell.head) == (layer, head))
            self.titles[k].setFont(font)
