"""The Graph tab's widgets around the graph, built here and wired by the panel: the row that picks what to show,
the stepping toolbar (buttons with their keyboard shortcuts, play speed, loss and step counter), the legend of node
and edge colours, and the RNN gradient strip's chart."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSlider, QSpinBox,
                               QToolButton, QVBoxLayout, QWidget)

from app.common.bptt_chart import BPTTChart, LossChoice
from app.graph.graph_scene import (BORDER, COMPUTED, CURRENT, EDGE_PEN, FILL, FORWARD, GRAD_DONE, GRAD_PARTIAL,
                                    GRADIENT, PENDING, SELECTED, STATE_NAMES)

LECTURE, MODEL = "Lecture example", "Current model"
FANOUT = "Fan-out example"   # the lecture's Version B: one value feeds two consumers, its gradient accumulates
NEWLINE_MARK = "⏎"    # a newline in the one-line text box (where it would be invisible); typed or pasted, it is one


class SourceBar(QHBoxLayout):
    """What to show: the lecture example, or the current model run on typed text or a random validation window."""

    def __init__(self):
        super().__init__()
        self.what = QComboBox()
        self.what.addItems([LECTURE, FANOUT, MODEL])
        # sized for the longest name, no more: a long name would widen the whole window past a 1280-px screen
        self.what.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.what.setMinimumContentsLength(max(len(LECTURE), len(FANOUT), len(MODEL)))
        self.what.setToolTip("Step through the seed lecture's tiny network; the fan-out example, where one value "
                             "feeds two consumers so its gradient accumulates (Version B); or the model you trained")
        self.text = QLineEdit()
        self.text.setPlaceholderText("text to run the model on (its inputs and next-token targets)")
        self.text.setToolTip(f"The model reads this text; {NEWLINE_MARK} stands for a newline")
        self.length = QSpinBox()
        self.length.setRange(2, 64)
        self.length.setValue(12)
        self.length.setPrefix("window ")
        self.length.setSuffix(" tokens")
        self.length.setToolTip("How many tokens a random window has; changing it draws a new window of that length "
                               "(typed text is used as typed)")
        self.random_btn = QPushButton("Random window")
        self.random_btn.setToolTip("Fill in a random stretch of the validation text, as many tokens as chosen")
        self.build_btn = QPushButton("Build graph")
        self.refresh_btn = QPushButton("Refresh model")
        self.refresh_btn.setToolTip("Take a new snapshot of the model (it moves on while training) and rebuild")
        for w in (QLabel("Show:"), self.what, self.text, self.length, self.random_btn, self.build_btn,
                  self.refresh_btn):
            self.addWidget(w)
        self.setStretchFactor(self.text, 1)


# key, text, tooltip, shortcut; the texts are short so the row fits a 1,000 px wide tab, the tooltips say it all
STEP_BUTTONS = (
    ("reset", "Reset", "Back to the start: no value computed, no gradient (Home)", Qt.Key_Home),
    ("back", "◀ Back", "Step back: undo the last step exactly (←)", Qt.Key_Left),
    ("forward", "Fwd", "Forward step: compute the next node's value", None),
    ("backward", "Bwd", "Backward step: push the next node's gradient into its inputs", None),
    ("step", "Step ▶", "Whichever step comes next (→)", Qt.Key_Right),
    ("play", "▶ Play", "Play / pause (space)", Qt.Key_Space),
    ("end", "End", "Run to end: finish the forward and the backward pass (End)", Qt.Key_End),
    ("fit", "Fit", "The whole graph, or as much as stays readable around the current node", None))


class SteppingBar(QHBoxLayout):
    """The row of step buttons (tool buttons: as wide as their text) and the speed slider; it also makes the step
    counter and the loss labels, which the panel places. Shortcuts are installed on `host` (any widget inside it
    may have focus), and the buttons take no focus so the arrow keys stay steps."""

    def __init__(self, host: QWidget):
        super().__init__()
        self.buttons: dict[str, QToolButton] = {}
        for key, text, tip, shortcut in STEP_BUTTONS:
            btn = QToolButton()
            btn.setText(text)
            btn.setToolTip(tip)
            btn.setFocusPolicy(Qt.NoFocus)
            btn.setMinimumWidth(52)
            self.addWidget(btn)
            self.buttons[key] = btn
            if shortcut is not None:
                sc = QShortcut(QKeySequence(shortcut), host, context=Qt.WidgetWithChildrenShortcut)
                sc.activated.connect(btn.click)
        self.speed = QSlider(Qt.Horizontal)
        self.speed.setRange(1, 20)
        self.speed.setValue(4)
        self.speed.setFixedWidth(90)
        self.speed.setToolTip("Play speed: steps per second")
        self.addWidget(QLabel("speed"))
        self.addWidget(self.speed)
        # made here, placed by the panel next to the step's sentence: their text grows as the run goes ("step 116 /
        # 116 · backward ✓"), and at the end of this row it widened the whole window past a 1280-px screen
        self.counter = QLabel()
        self.counter.setStyleSheet("font-weight: bold")
        self.loss_label = QLabel()
        self.addStretch(1)


class GradientStrip(QWidget):
    """‖∂L/∂h_t‖ per time step under an RNN's graph, on a log axis, with whose loss L is and a layer chooser.

    With the mean loss (the tape's own J) the panel fills the bars in from the stepper as the backward pass
    reaches each h_t. One position's loss (the default: the last) is not the tape's J, so those bars come from
    torch.autograd on the same model and text (engine.inside.bptt_norms), all at once. Until there is a value a
    line of text stands in the chart's place."""

    def __init__(self):
        super().__init__()
        self.loss = LossChoice()
        self.plot = BPTTChart(height=140)
        self.plot.setFixedHeight(150)     # the graph above keeps the height; a long title would not wrap here
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #546e7a")
        self.no_grad_note = QLabel()
        self.no_grad_note.setWordWrap(True)
        self.no_grad_note.setAlignment(Qt.AlignCenter)
        self.no_grad_note.setFixedHeight(140)
        self.no_grad_note.setStyleSheet("color: #607d8b; background: white")
        self.layer = QComboBox()
        sl = QVBoxLayout(self)
        sl.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(self.loss)
        row.addStretch(1)
        row.addWidget(self.layer)
        sl.addLayout(row)
        sl.addWidget(self.note)
        sl.addWidget(self.plot)
        sl.addWidget(self.no_grad_note)

    def show_norms(self, norms, title: str, waiting: str, note: str = "") -> None:
        """Bars for t = 1…T under a short `title`, the longer `note` wrapped above; or the `waiting` line while
        every norm is still 0."""
        self.plot.show_norms(norms, title)
        self.note.setText(note)
        self.plot.setVisible(bool(norms.any()))
        self.no_grad_note.setVisible(not norms.any())
        self.no_grad_note.setText(waiting)


def legend() -> QWidget:
    """Swatches for the node states, the markers, the edge highlights and the node shapes, matching the scene's
    colours: one short row each, so the legend does not set the window's minimum width."""
    box = QWidget()
    rows = QVBoxLayout(box)
    rows.setContentsMargins(4, 0, 4, 0)
    rows.setSpacing(1)
    states = [(FILL[s].name(), "#455a64", 4, STATE_NAMES[s]) for s in (PENDING, COMPUTED, GRAD_PARTIAL, GRAD_DONE)]
    marks = [("#ffffff", CURRENT.name(), 4, "current step"), ("#ffffff", SELECTED.name(), 4, "inspected node"),
             (EDGE_PEN[FORWARD].color().name(), None, 0, "inputs of this forward step"),
             (EDGE_PEN[GRADIENT].color().name(), None, 0, "gradient increments of this step")]
    shapes = [("#ffffff", BORDER[kind].name(), radius, text)
              for kind, radius, text in (("op", 4, "op"), ("param", 6, "parameter"), ("input", 0, "input"))]
    for entries in (states, marks, shapes):
        row = QHBoxLayout()
        row.setSpacing(5)
        for fill, border, radius, text in entries:
            swatch = QLabel()
            swatch.setFixedSize(22, 12 if border else 4)
            swatch.setStyleSheet(f"background: {fill}; border: {'2px solid ' + border if border else 'none'};"
                                 f"border-radius: {radius}px")
            row.addWidget(swatch)
            row.addWidget(QLabel(text))
            row.addSpacing(12)
        row.addStretch(1)
        rows.addLayout(row)
    return box
