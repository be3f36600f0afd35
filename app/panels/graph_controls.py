"""The Graph tab's widgets around the graph, built here and wired by the panel: the stepping toolbar (buttons with
their keyboard shortcuts, play speed, loss and step counter), the legend of node and edge colours, and the RNN
gradient strip's chart."""
from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QSlider, QVBoxLayout, QWidget

from app.panels.graph_scene import (BORDER, COMPUTED, CURRENT, EDGE_PEN, FILL, FORWARD, GRAD_DONE, GRAD_PARTIAL,
                                    GRADIENT, PENDING, STATE_NAMES)

STEP_BUTTONS = (   # key, text, tooltip, shortcut
    ("reset", "Reset", "Back to the start: no value computed, no gradient (Home)", Qt.Key_Home),
    ("back", "◀ Step back", "Undo the last step exactly (←)", Qt.Key_Left),
    ("forward", "Forward step", "Compute the next node's value", None),
    ("backward", "Backward step", "Push the next node's gradient into its inputs", None),
    ("step", "Step ▶", "Whichever step comes next (→)", Qt.Key_Right),
    ("play", "▶ Play", "Play / pause (space)", Qt.Key_Space),
    ("end", "Run to end", "Finish the forward and the backward pass (End)", Qt.Key_End),
    ("fit", "Fit", "Zoom to show the whole graph", None))


class SteppingBar(QHBoxLayout):
    """The row of step buttons, the speed slider, the loss and the step counter. Shortcuts are installed on
    `host` (any widget inside it may have focus), and the buttons take no focus so the arrow keys stay steps."""

    def __init__(self, host: QWidget):
        super().__init__()
        self.buttons: dict[str, QPushButton] = {}
        for key, text, tip, shortcut in STEP_BUTTONS:
            btn = QPushButton(text)
            btn.setToolTip(tip)
            btn.setFocusPolicy(Qt.NoFocus)
            self.addWidget(btn)
            self.buttons[key] = btn
            if shortcut is not None:
                sc = QShortcut(QKeySequence(shortcut), host, context=Qt.WidgetWithChildrenShortcut)
                sc.activated.connect(btn.click)
        self.speed = QSlider(Qt.Horizontal)
        self.speed.setRange(1, 20)
        self.speed.setValue(4)
        self.speed.setFixedWidth(110)
        self.speed.setToolTip("Play speed: steps per second")
        self.addWidget(QLabel("speed"))
        self.addWidget(self.speed)
        self.counter = QLabel()
        self.counter.setStyleSheet("font-weight: bold")
        self.loss_label = QLabel()
        self.addStretch(1)
        self.addWidget(self.loss_label)
        self.addWidget(self.counter)


class GradientStrip(QWidget):
    """Bars of ‖∂L/∂h_t‖ per time step under an RNN's graph, with a title and a layer chooser; the panel fills
    them in as the backward pass reaches each h_t."""

    def __init__(self):
        super().__init__()
        self.plot = pg.PlotWidget(background="w")
        self.plot.setFixedHeight(130)
        self.plot.setLabel("bottom", "time step t")
        self.plot.setLabel("left", "‖∂L/∂h_t‖")
        self.plot.setMouseEnabled(False, False)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.8, brush="#ef6c00")
        self.plot.addItem(self.bars)
        self.layer = QComboBox()
        sl = QVBoxLayout(self)
        sl.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.title = QLabel()
        row.addWidget(self.title, 1)
        row.addWidget(self.layer)
        sl.addLayout(row)
        sl.addWidget(self.plot)


def legend() -> QWidget:
    """Swatches for the node states and edge highlights, matching the scene's colours."""
    box = QWidget()
    row = QHBoxLayout(box)
    row.setContentsMargins(4, 0, 4, 0)
    entries = [(FILL[s].name(), "#455a64", STATE_NAMES[s]) for s in (PENDING, COMPUTED, GRAD_PARTIAL, GRAD_DONE)]
    entries += [("#ffffff", CURRENT.name(), "current step"),
                (EDGE_PEN[FORWARD].color().name(), None, "inputs of this forward step"),
                (EDGE_PEN[GRADIENT].color().name(), None, "gradient increments of this step")]
    for fill, border, text in entries:
        swatch = QLabel()
        swatch.setFixedSize(22, 12 if border else 4)
        swatch.setStyleSheet(f"background: {fill}; border: {'2px solid ' + border if border else 'none'};"
                             "border-radius: 3px")
        row.addWidget(swatch)
        row.addWidget(QLabel(text))
        row.addSpacing(10)
    for kind, radius, text in (("op", 4, "op"), ("param", 6, "parameter"), ("input", 0, "input")):
        swatch = QLabel()
        swatch.setFixedSize(26, 12)
        swatch.setStyleSheet(f"background: white; border: 2px solid {BORDER[kind].name()}; border-radius: {radius}px")
        row.addWidget(swatch)
        row.addWidget(QLabel(text))
        row.addSpacing(6)
    row.addStretch(1)
    return box
