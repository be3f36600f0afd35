"""The earlier runs beside the loss plot: one row per kept run, in its colour, with a check box that shows or
hides its curve and a Remove button for the selected rows. It lists every run the plot holds (there is no cap),
and it sits beside the plot, so it never covers the curves the way a legend does."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QColor, QPixmap, QIcon
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton,
                               QVBoxLayout, QWidget)

from app.training.run_history import RunHistory


class RunList(QWidget):
    changed = Signal()   # a run was hidden, shown or removed: the plot redraws

    def __init__(self, history: RunHistory, parent: QWidget | None = None):
        super().__init__(parent)
        self.history = history
        self.title = QLabel()
        self.list = QListWidget()
        self.list.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.list.setWordWrap(True)
        self.list.setToolTip("Earlier runs, oldest first: untick a run to hide its curve; select runs and press "
                             "Remove to take them off the plot.")
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Take the selected earlier runs off the plot.")
        self.remove_button.clicked.connect(self.remove_selected)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.remove_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)
        self.setFixedWidth(230)
        self.list.itemChanged.connect(self._on_item_changed)
        self.list.itemSelectionChanged.connect(self._update_buttons)
        self.refresh()

    def refresh(self) -> None:
        """Rebuild the rows from the history (after a run was kept, removed or all were forgotten)."""
        self.list.blockSignals(True)
        self.list.clear()
        for run in self.history.runs:
            item = QListWidgetItem(run.label)
            item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
            item.setCheckState(Qt.Unchecked if run.hidden else Qt.Checked)
            swatch = QPixmap(14, 14)
            swatch.fill(QColor(*run.color))
            item.setIcon(QIcon(swatch))
            item.setToolTip(run.label)
            item.setData(Qt.UserRole, id(run))
            self.list.addItem(item)
        self.list.blockSignals(False)
        self.title.setText(f"Earlier runs ({len(self.history.runs)})")
        self.setVisible(bool(self.history.runs))
        self._update_buttons()

    def _run_of(self, item: QListWidgetItem):
        key = item.data(Qt.UserRole)
        return next(r for r in self.history.runs if id(r) == key)

    @Slot(QListWidgetItem)
    def _on_item_changed(self, item: QListWidgetItem) -> None:
        self.history.set_run_visible(self._run_of(item), item.checkState() == Qt.Checked)
        self.changed.emit()

    @Slot()
    def remove_selected(self) -> None:
        for item in self.list.selectedItems():
            self.history.remove(self._run_of(item))
        self.refresh()
        self.changed.emit()

    @Slot()
    def _update_buttons(self) -> None:
        self.remove_button.setEnabled(bool(self.list.selectedItems()))
