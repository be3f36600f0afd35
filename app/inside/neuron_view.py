"""Neuron activations over text: pick a site (layer and what: h, c, a gate, an MLP neuron, a residual dimension)
and a unit, and every token of the text is coloured by that unit's activation on a diverging scale; hovering a
token gives the value. Beside it, the units ranked by how well they track simple features of the text (|Pearson
r|), and clicking one shows it."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QLinearGradient, QPainter
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QHBoxLayout, QLabel, QSpinBox, QSplitter,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget, QHeaderView)

from app.common.token_view import TokenView, token_label
from app.inside.scales import diverging, site_scale, text_color_on
from engine.inside.activations import SITE_HELP
from engine.inside.features import FEATURES

ALL_FEATURES = "best feature of each unit"


class ActivationText(TokenView):
    """The text, each token's background the chosen unit's activation there."""

    def show_values(self, pieces: list[str], tips: list[str], rgb: np.ndarray) -> None:
        self.clear_tokens()
        self.append_tokens(list(zip(pieces, tips)))
        cursor = self.textCursor()
        cursor.beginEditBlock()
        for i, (start, end) in enumerate(zip(self._starts, self._ends)):
            cursor.setPosition(start)
            cursor.setPosition(end, cursor.MoveMode.KeepAnchor)
            fmt = cursor.charFormat()
            fmt.setBackground(QColor(*rgb[i]))
            fmt.setForeground(QColor(text_color_on(rgb[i])))
            cursor.setCharFormat(fmt)
        cursor.endEditBlock()
        self.moveCursor(self.textCursor().MoveOperation.Start)


class ScaleLegend(QWidget):
    """The diverging colour bar with its low, centre and high values written under it."""

    def __init__(self):
        super().__init__()
        self.setFixedHeight(34)
        self.setMinimumWidth(220)
        self.centre, self.half = 0.0, 1.0

    def set_scale(self, centre: float, half: float) -> None:
        self.centre, self.half = centre, half
        self.update()

    def labels(self) -> tuple[str, str, str]:
        return (f"{self.centre - self.half:.3g}", f"{self.centre:.3g}", f"{self.centre + self.half:.3g}")

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        w = self.width()
        grad = QLinearGradient(0, 0, w, 0)
        stops = np.linspace(self.centre - self.half, self.centre + self.half, 9)
        for k, rgb in enumerate(diverging(stops, self.centre, self.half)):
            grad.setColorAt(k / 8, QColor(*rgb))
        p.fillRect(0, 0, w, 14, grad)
        p.setPen(QColor("#444444"))
        p.drawRect(0, 0, w - 1, 14)
        lo, mid, hi = self.labels()
        p.drawText(0, 16, w, 18, Qt.AlignLeft | Qt.AlignTop, lo)
        p.drawText(0, 16, w, 18, Qt.AlignHCenter | Qt.AlignTop, mid)
        p.drawText(0, 16, w, 18, Qt.AlignRight | Qt.AlignTop, hi)
        p.end()


class NeuronView(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.inside = None
        self.site = QComboBox()
        self.site.setToolTip("Which activations: the layer and the quantity (hover an entry for what it is)")
        self.unit = QSpinBox()
        self.unit.setPrefix("unit ")
        self.unit.setToolTip("Which unit (neuron, dimension) of that site")
        self.about = QLabel()
        self.about.setStyleSheet("color: #455a64")
        self.about.setWordWrap(True)
        self.legend = ScaleLegend()
        self.text = ActivationText()
        self.feature = QComboBox()
        self.feature.addItem(ALL_FEATURES)
        for name, tip in FEATURES.items():
            self.feature.addItem(name)
            self.feature.setItemData(self.feature.count() - 1, tip, Qt.ToolTipRole)
        self.feature.setToolTip("Rank units by how well they track this feature of the text")
        self.ranked = QTableWidget(0, 3)
        self.ranked.setHorizontalHeaderLabels(["unit", "feature", "r"])
        self.ranked.verticalHeader().hide()
        self.ranked.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.ranked.setSelectionMode(QAbstractItemView.SingleSelection)
        self.ranked.setEditTriggers(QAbstractItemView.NoEditTriggers)
        # fixed widths: a ResizeToContents column re-measures on every setItem (150 items took 0.2 s)
        self.ranked.horizontalHeader().setSectionResizeMode(1, QHeaderView.Stretch)
        self.ranked.setColumnWidth(0, 112)
        self.ranked.setColumnWidth(2, 56)
        self.ranked.setWordWrap(False)       # one line a unit: a long feature name is elided, its tooltip whole
        self.ranked.setToolTip("Pearson correlation r between the unit's activation and the feature over this "
                               "text; click a row to colour the text by that unit")
        self.rank_note = QLabel()
        self.rank_note.setWordWrap(True)
        self.rank_note.setStyleSheet("color: #607d8b")

        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("Activations of"))
        row.addWidget(self.site)
        row.addWidget(self.unit)
        row.addStretch(1)
        row.addWidget(QLabel("scale:"))
        row.addWidget(self.legend)
        ll.addLayout(row)
        ll.addWidget(self.about)
        ll.addWidget(self.text, 1)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(QLabel("Units that track a feature of the text"))
        rl.addWidget(self.feature)
        rl.addWidget(self.ranked, 1)
        rl.addWidget(self.rank_note)
        split = QSplitter(Qt.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        split.setSizes([700, 300])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(split)

        self.site.currentIndexChanged.connect(self._site_changed)
        self.unit.valueChanged.connect(lambda _: self._draw())
        self.feature.currentIndexChanged.connect(lambda _: self._fill_ranking())
        self.ranked.cellClicked.connect(self._ranked_clicked)

    def set_inside(self, inside) -> None:
        """Show a new look_inside result, keeping the chosen site and unit when the new one has them."""
        self.inside = inside
        keep_site, keep_unit = self.site.currentText(), self.unit.value()
        self.site.blockSignals(True)
        self.site.clear()
        for name in inside.sites:
            self.site.addItem(name)
            self.site.setItemData(self.site.count() - 1, SITE_HELP[name.rsplit(" ", 1)[-1]], Qt.ToolTipRole)
        self.site.blockSignals(False)
        if keep_site in inside.sites:
            self.show_unit(keep_site, keep_unit)
        elif inside.best_units:
            self.show_unit(inside.best_units[0].site, inside.best_units[0].unit)
        else:
            self.show_unit(next(iter(inside.sites)), 0)
        self._fill_ranking()

    def show_unit(self, site: str, unit: int) -> None:
        self.site.blockSignals(True)
        self.site.setCurrentText(site)
        self.site.blockSignals(False)
        self.unit.blockSignals(True)
        self.unit.setRange(0, self.inside.sites[site].shape[1] - 1)
        self.unit.setValue(unit)
        self.unit.blockSignals(False)
        self._draw()

    def _site_changed(self) -> None:
        if self.inside is not None and self.site.currentText() in self.inside.sites:
            self.show_unit(self.site.currentText(), min(self.unit.value(),
                                                        self.inside.sites[self.site.currentText()].shape[1] - 1))

    def current_values(self) -> np.ndarray:
        return self.inside.sites[self.site.currentText()][:, self.unit.value()]

    def _draw(self) -> None:
        ins = self.inside
        site, unit = self.site.currentText(), self.unit.value()
        values = self.current_values()
        centre, half = site_scale(site, values)
        self.legend.set_scale(centre, half)
        self.legend.setToolTip(f"blue below {centre:.3g}, white at {centre:.3g}, red above; the ends are "
                               f"{centre - half:.4g} and {centre + half:.4g}")
        r = {name: float(np.corrcoef(values, f)[0, 1]) if values.std() > 0 and f.std() > 0 else None
             for name, f in zip(ins.feature_names, ins.features)}
        best = max((k for k in r if r[k] is not None), key=lambda k: abs(r[k]), default=None)
        track = f"; tracks “{best}” best here, r = {r[best]:+.2f}" if best else ""
        self.about.setText(f"{site}, unit {unit}: {SITE_HELP[site.rsplit(' ', 1)[-1]]}. Over this text it ranges "
                           f"{values.min():.3g} … {values.max():.3g}{track}. Hover a token for its value.")
        tips = [f"“{token_label(tok)}” (token {t + 1})\n{site}[{unit}] = {v:.4f}" for t, (tok, v) in
                enumerate(zip(ins.tokens, values))]
        self.text.show_values(ins.pieces, tips, diverging(values, centre, half))

    def _fill_ranking(self) -> None:
        ins = self.inside
        if ins is None:
            return
        choice = self.feature.currentText()
        units = ins.best_units[:50] if choice == ALL_FEATURES else ins.by_feature.get(choice, [])
        self.ranked.setUpdatesEnabled(False)
        self.ranked.setRowCount(len(units))
        for row, u in enumerate(units):
            for col, text in enumerate((f"{u.site} #{u.unit}", u.feature, f"{u.r:+.3f}")):
                item = QTableWidgetItem(text)
                item.setData(Qt.UserRole, (u.site, u.unit))
                item.setToolTip(f"{u.site}, unit {u.unit}: r = {u.r:+.4f} with “{u.feature}” "
                                f"({FEATURES[u.feature]})")
                if col == 2:
                    item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                self.ranked.setItem(row, col, item)
        self.ranked.setUpdatesEnabled(True)
        if choice != ALL_FEATURES and not units:
            self.rank_note.setText(f"“{choice}” is the same at every token of this text, so nothing can track it "
                                   "here: try a text where it changes.")
        else:
            self.rank_note.setText("r near ±1: the unit rises and falls with the feature on this text (a "
                                   "correlation, not proof of what the unit computes).")

    def _ranked_clicked(self, row: int, col: int) -> None:
        site, unit = self.ranked.item(row, 0).data(Qt.UserRole)
        self.show_unit(site, unit)
