"""The logit lens as a table: one column per position of the text (headed by the token read there), and two bands
of rows, one row per readout (the embeddings, then after each block). The first band gives the token that readout
ranks first and its probability; the second the probability each readout gives the token the full model ranks
first, so one can watch the final prediction form layer by layer. The last row of each band is the model itself."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from app.common.token_view import display_form
from app.inside.scales import sequential, text_color_on


def _tok(s: str) -> str:
    return display_form(s).replace("\n", "")


class LensView(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.table = QTableWidget()
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.table.horizontalHeader().setDefaultSectionSize(64)
        self.table.horizontalHeader().setMinimumSectionSize(40)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #546e7a")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.note)
        lay.addWidget(self.table, 1)

    def set_lens(self, lens, tokens: list[str]) -> None:
        n, T = lens.top_probs.shape
        rows = [f"top: {name}" for name in lens.layer_names] + [
            f"P(model's top): {name}" for name in lens.layer_names]
        self.table.clear()
        self.table.setRowCount(2 * n)
        self.table.setColumnCount(T)
        self.table.setVerticalHeaderLabels(rows)
        self.table.setHorizontalHeaderLabels([f"{t + 1} {_tok(tok)}" for t, tok in enumerate(tokens)])
        for t in range(T):
            header = self.table.horizontalHeaderItem(t)
            nxt = f"; the text's next token is “{_tok(tokens[t + 1])}”" if t + 1 < T else ""
            header.setToolTip(f"position {t + 1}: the model has read up to “{_tok(tokens[t])}”{nxt}")
        top_rgb, final_rgb = sequential(lens.top_probs), sequential(lens.final_probs)
        final_tok = [lens.top_tokens[-1][t] for t in range(T)]
        for k in range(n):
            for t in range(T):
                p = float(lens.top_probs[k, t])
                self._cell(k, t, f"{_tok(lens.top_tokens[k][t])} {p:.2f}", top_rgb[k, t],
                           f"{lens.layer_names[k]}, position {t + 1}: ranks “{_tok(lens.top_tokens[k][t])}” first "
                           f"with p = {p:.4f}")
                q = float(lens.final_probs[k, t])
                self._cell(n + k, t, f"{q:.3f}", final_rgb[k, t],
                           f"{lens.layer_names[k]}, position {t + 1}: p(“{_tok(final_tok[t])}”) = {q:.4f}; "
                           f"“{_tok(final_tok[t])}” is what the full model ranks first here")
        self.table.resizeColumnsToContents()
        self.note.setText(
            "Logit lens (nostalgebraist 2020): each row reads the residual stream after that layer through the "
            "final LayerNorm and the output head, as if the later blocks were skipped. Upper band: the token that "
            "readout ranks first and its probability. Lower band: the probability of the full model's top token. "
            "The last row of each band is the model's own output. Darker = more probable; hover for exact values.")

    def _cell(self, row: int, col: int, text: str, rgb, tip: str) -> None:
        item = QTableWidgetItem(text)
        item.setBackground(QColor(*rgb))
        item.setForeground(QColor(text_color_on(rgb)))
        item.setToolTip(tip)
        item.setTextAlignment(Qt.AlignCenter)
        self.table.setItem(row, col, item)
