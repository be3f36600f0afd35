"""The Tokens tab's tables (vocabulary, BPE merges, words mapped to <unk>): a read-only model whose rows are built
on demand, answered in one call per painted cell, and a view whose columns are sized once per result."""
from __future__ import annotations

from functools import lru_cache

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QModelRoleData, QObject, Qt
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import QHeaderView, QTableView

CELL_PADDING = 14         # a cell's margins around its text, in pixels
WIDTH_ROWS = 32            # rows a table's column widths are measured on (the most frequent tokens come first)


ANSWERED_ROLES = frozenset((Qt.DisplayRole, Qt.TextAlignmentRole, Qt.FontRole))
LEFT = int(Qt.AlignLeft | Qt.AlignVCenter)
RIGHT = int(Qt.AlignRight | Qt.AlignVCenter)


class RowsModel(QAbstractTableModel):
    """A read-only table whose rows come from a function on demand, so a 50,000-token vocabulary costs nothing
    until it is scrolled to. Ints show with thousands separators, floats as percentages, strings in monospace."""

    def __init__(self, headers: tuple[str, ...], parent: QObject | None = None):
        super().__init__(parent)
        self.headers, self._n, self._row = headers, 0, None
        self.mono = QFont("DejaVu Sans Mono")
        self.mono.setStyleHint(QFont.Monospace)

    def set_rows(self, n: int, row) -> None:
        """row(i) builds the whole row; it is cached, since a view asks for each cell several times (text,
        alignment, font, ...) and sizing a column asks for a column of rows at once."""
        self.beginResetModel()
        self._n, self._row = n, lru_cache(maxsize=512)(row)
        self.endResetModel()

    def row(self, i: int) -> tuple:
        return self._row(i)

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else self._n

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.headers)

    @staticmethod
    def display(value) -> str:
        return f"{value:,}" if isinstance(value, int) else f"{value:.2%}" if isinstance(value, float) else value

    def index(self, row: int, column: int, parent=QModelIndex()) -> QModelIndex:
        """Qt's own index() asks rowCount() and columnCount() for every cell it paints: two more calls into
        Python, each one waiting for the GIL while a worker thread holds it (see multiData)."""
        if parent.isValid() or not (0 <= row < self._n and 0 <= column < len(self.headers)):
            return QModelIndex()
        return self.createIndex(row, column)

    def _roles(self, value) -> dict:
        """The roles this model answers for a cell holding `value`."""
        if isinstance(value, str):
            return {Qt.DisplayRole: value, Qt.TextAlignmentRole: LEFT, Qt.FontRole: self.mono}
        return {Qt.DisplayRole: self.display(value), Qt.TextAlignmentRole: RIGHT}

    def data(self, index, role=Qt.DisplayRole):
        if role not in ANSWERED_ROLES or not index.isValid():
            return None
        return self._roles(self._row(index.row())[index.column()]).get(role)

    def multiData(self, index, roles) -> None:
        """Every role of a cell in one call: the view's delegate asks for seven at once (Qt 6). A cell painted
        through data() costs seven calls from C++ into Python, and each call first waits for the GIL: with a
        worker tokenizing in pure Python (it holds the GIL for a switch interval at a time) a table repaint of
        ~1,000 such calls froze the window for 150-300 ms (bench/gui_stalls.py tokens_word_result)."""
        answers = self._roles(self._row(index.row())[index.column()]) if index.isValid() else {}
        for slot in ((roles,) if isinstance(roles, QModelRoleData) else roles):   # a span, or one role
            value = answers.get(slot.role())
            if value is None:
                slot.clearData()    # the delegate reuses its span from cell to cell: no role may keep the last one's
            else:
                slot.setData(value)

    def headerData(self, section, orientation, role=Qt.DisplayRole):
        if role == Qt.DisplayRole and orientation == Qt.Horizontal:
            return self.headers[section]
        return None


def table(model: RowsModel, stretch: int) -> QTableView:
    """Columns are sized once per new result, from the header and the first WIDTH_ROWS rows, and can be dragged
    wider. ResizeToContents would ask the model for every row's text again on every show and resize: with a
    25,000-word vocabulary that is ~100,000 data() calls, a freeze of over a second each time the tab appears."""
    view = QTableView()
    view.setModel(model)
    view.verticalHeader().hide()
    view.verticalHeader().setDefaultSectionSize(22)
    view.setAlternatingRowColors(True)
    view.setSelectionBehavior(QTableView.SelectRows)
    header = view.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.Interactive)
    header.setSectionResizeMode(stretch, QHeaderView.Stretch)
    header.setResizeContentsPrecision(WIDTH_ROWS)
    model.modelReset.connect(lambda: fit_columns(view))
    return view


def fit_columns(view: QTableView) -> None:
    """Widths from the header, the first WIDTH_ROWS rows and the last one (the longest rank: 25,000 next to the
    top's 1), measured here with font metrics: Qt's own sizing asks the model for every role of every cell."""
    model: RowsModel = view.model()
    n, header = model.rowCount(), view.horizontalHeader()
    rows = [model.row(i) for i in [*range(min(n, WIDTH_ROWS)), *([n - 1] if n > WIDTH_ROWS else [])]]
    plain, mono = view.fontMetrics(), QFontMetrics(model.mono)
    for c in range(model.columnCount()):
        if header.sectionResizeMode(c) == QHeaderView.Stretch:
            continue
        texts = [(model.display(r[c]), isinstance(r[c], str)) for r in rows]
        cells = max((mono if is_str else plain).horizontalAdvance(t) for t, is_str in texts) if texts else 0
        view.setColumnWidth(c, max(cells + CELL_PADDING, header.sectionSizeHint(c)))
