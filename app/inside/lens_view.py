"""The logit lens as a table: one column per position of the text (headed by the token read there), and two bands
of rows, one row per readout (the embeddings, then after each block). The first band gives the token that readout
ranks first and its probability; the second the probability each readout gives the token the full model ranks
first, so one can watch the final prediction form layer by layer. The last row of each band is the model itself.

A table model answers for the cells on screen only, so a 256-token text costs no more to show than a short one."""
from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QLabel, QTableView, QVBoxLayout, QWidget

from app.common.token_view import token_label
from app.inside.scales import sequential, text_color_on


def _tok(s: str) -> str:
    return token_label(s)


class LensModel(QAbstractTableModel):
    def __init__(self):
        super().__init__()
        self.lens = None
        self.tokens: list[str] = []

    def set_lens(self, lens, tokens: list[str]) -> None:
        self.beginResetModel()
        self.lens, self.tokens = lens, tokens
        self.rgb = (sequential(lens.top_probs), sequential(lens.final_probs))
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if self.lens is None or parent.isValid() else 2 * len(self.lens.layer_names)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if self.lens is None or parent.isValid() else len(self.tokens)

    def headerData(self, section: int, orientation, role=Qt.DisplayRole):
        if self.lens is None:
            return None
        if orientation == Qt.Vertical:
            n = len(self.lens.layer_names)
            name = self.lens.layer_names[section % n]
            if role == Qt.DisplayRole:
                return f"top: {name}" if section < n else f"P(model's top): {name}"
            if role == Qt.ToolTipRole:
                return (f"the token the readout {name} ranks first, and its probability" if section < n else
                        f"the probability the readout {name} gives the token the full model ranks first")
            return None
        if role == Qt.DisplayRole:
            return f"{section + 1} {_tok(self.tokens[section])}"
        if role == Qt.ToolTipRole:
            nxt = (f"; the text's next token is “{_tok(self.tokens[section + 1])}”"
                   if section + 1 < len(self.tokens) else "")
            return f"position {section + 1}: the model has read up to “{_tok(self.tokens[section])}”{nxt}"
        return None

    def data(self, index: QModelIndex, role=Qt.DisplayRole):
        if self.lens is None or not index.isValid():
            return None
        lens, n = self.lens, len(self.lens.layer_names)
        row, t = index.row(), index.column()
        band, k = divmod(row, n)
        if role in (Qt.BackgroundRole, Qt.ForegroundRole):
            rgb = self.rgb[band][k, t]
            return QColor(*rgb) if role == Qt.BackgroundRole else QColor(text_color_on(rgb))
        if role == Qt.TextAlignmentRole:
            return int(Qt.AlignCenter)
        top = _tok(lens.top_tokens[k][t])
        final = _tok(lens.top_tokens[-1][t])
        if band == 0:
            p = float(lens.top_probs[k, t])
            if role == Qt.DisplayRole:
                return f"{top} {p:.2f}"
            if role == Qt.ToolTipRole:
                return f"{lens.layer_names[k]}, position {t + 1}: ranks “{top}” first with p = {p:.4f}"
        else:
            q = float(lens.final_probs[k, t])
            if role == Qt.DisplayRole:
                return f"{q:.3f}"
            if role == Qt.ToolTipRole:
                return (f"{lens.layer_names[k]}, position {t + 1}: p(“{final}”) = {q:.4f}; “{final}” is what the "
                        f"full model ranks first here")
        return None


class LensView(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = LensModel()
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.horizontalHeader().setDefaultSectionSize(62)
        self.note = QLabel(
            "Logit lens (nostalgebraist 2020): each row reads the residual stream after that layer through the "
            "final LayerNorm and the output head, as if the later blocks were skipped. Upper band: the token that "
            "readout ranks first and its probability. Lower band: the probability of the full model's top token. "
            "The last row of each band is the model's own output. Darker = more probable; hover for exact values.")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #546e7a")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.note)
        lay.addWidget(self.table, 1)

    def set_lens(self, lens, tokens: list[str]) -> None:
        self.model.set_lens(lens, tokens)

    def cell_text(self, row: int, col: int) -> str:
        return self.model.data(self.model.index(row, col))
