"""The Run box under the training form: Start, Pause, Resume, Stop, Save, Load, Fine-tune and Export, the progress
bar, the speed line and the run's message. Which buttons a run state allows, what a report shows, and the line
saying why Start is disabled live here; the form (train_panel.py) decides whether a run can start and why not."""
from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QFrame, QGridLayout, QGroupBox, QLabel, QProgressBar, QPushButton, QScrollArea,
                               QVBoxLayout)

FINETUNE_TIP = ("Start a new run from the loaded (or this run's just saved) checkpoint's weights on the corpus "
                "chosen above, keeping its tokenizer and model; max_steps, lr and the other training fields apply to "
                "the new run.")
RESUME_TIP = "Continue a paused run, or go on training a loaded checkpoint up to max_steps."
STOP_TIP = ("End the run after the current step; it can be saved at once, while a final validation pass over the "
            "whole validation split runs.")
SKIP_TIP = "Skip the final validation pass (the model stays as trained and can be saved)."
START_TIP = "Build the model and train it with these settings."

REASON_CHARS = 90   # a reason Start is disabled longer than this shows its first clause on the speed line
MESSAGE_LINES = 6   # lines the run message keeps room for: the run, the engine's note, the evaluation, an error
RUNNING = ("preparing", "running", "paused", "stopping", "validating")


class RunBox(QGroupBox):
    """The buttons are attributes (start_button, ...); the window connects to them through the training panel's
    signals. `progress`, `speed` and `message` are the bar and the two labels under them."""

    def __init__(self, parent=None):
        super().__init__("Run", parent)
        self.start_button = QPushButton("Start")
        self.pause_button = QPushButton("Pause")
        self.resume_button = QPushButton("Resume")
        self.stop_button = QPushButton("Stop")
        self.save_button = QPushButton("Save checkpoint…")
        self.load_button = QPushButton("Load checkpoint…")
        self.finetune_button = QPushButton("Fine-tune on this corpus")
        self.export_button = QPushButton("Export as script…")
        for b, tip in ((self.start_button, START_TIP),
                       (self.pause_button, "Pause after the current step; the model can be saved or sampled."),
                       (self.resume_button, RESUME_TIP),
                       (self.stop_button, STOP_TIP),
                       (self.save_button, "Write the run's model, optimizer and settings to a folder."),
                       (self.load_button, "Open a saved checkpoint for sampling and the graph view."),
                       (self.finetune_button, FINETUNE_TIP),
                       (self.export_button, "Write the loaded (or this run's just saved) checkpoint's run as one "
                                            "plain PyTorch script (torch and numpy only) that trains it from "
                                            "scratch and samples.")):
            b.setToolTip(tip)
        self.start_button.setObjectName("startButton")
        self.progress = QProgressBar()
        self.progress.setFormat("idle")
        self.progress.setValue(0)   # a bar with no value yet (-1) draws no text at all, "idle" included
        self.progress.setToolTip("Steps done out of max_steps, and the estimated time left.")
        self.speed = QLabel(" ")
        self.speed.setWordWrap(True)   # a long line must not widen the panel (and with it the window)
        self.message = QLabel()
        self.message.setObjectName("runMessage")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.message.setAlignment(Qt.AlignLeft | Qt.AlignTop)
        # Fixed heights: the run box sits at the bottom, so a label that grew when training started (the run's
        # description, the first evaluation) pushed the buttons up by ~70 px, under the pointer that had just
        # clicked Start. The message scrolls inside its reserved lines instead.
        line = self.fontMetrics().lineSpacing()
        self.speed.setFixedHeight(2 * line + 4)
        message_area = QScrollArea()
        message_area.setWidget(self.message)
        message_area.setWidgetResizable(True)
        message_area.setFrameShape(QFrame.NoFrame)
        message_area.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        message_area.setFixedHeight(MESSAGE_LINES * line + 6)
        message_area.viewport().setAutoFillBackground(False)   # no grey box where there is no message yet
        self.message.setAutoFillBackground(False)
        buttons = QGridLayout()
        for i, b in enumerate((self.start_button, self.pause_button, self.resume_button, self.stop_button)):
            buttons.addWidget(b, 0, i)
        buttons.addWidget(self.save_button, 1, 0, 1, 2)
        buttons.addWidget(self.load_button, 1, 2, 1, 2)
        buttons.addWidget(self.finetune_button, 2, 0, 1, 2)
        buttons.addWidget(self.export_button, 2, 2, 1, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.speed)
        layout.addWidget(message_area)
        self._reason_shown = False       # the speed line says why Start is disabled (see show_start)
        self._speed_under = (" ", "")    # the speed line's text and tooltip under that reason, put back after it

    def set_state(self, state: str, *, ngram: bool, can_save: bool, can_continue: bool,
                  has_checkpoint: bool) -> None:
        """Enable the buttons `state` allows (the states and flags as TrainPanel.set_state documents them; Start
        is show_start's)."""
        running = state in RUNNING
        self.pause_button.setEnabled(state == "running" and not ngram)
        self.resume_button.setEnabled(state == "paused" or (state == "loaded" and can_continue))
        self.stop_button.setEnabled(state in ("preparing", "running", "paused", "validating"))
        self.stop_button.setToolTip(SKIP_TIP if state == "validating" else STOP_TIP)
        self.save_button.setEnabled(can_save and state in ("paused", "validating", "done", "stopped", "error"))
        self.load_button.setEnabled(not running)
        # an n-gram checkpoint has no has_checkpoint (checkpoint_in_use); an n-gram form has no training settings
        self.finetune_button.setEnabled(has_checkpoint and not running and not ngram)
        self.export_button.setEnabled(has_checkpoint and not running and not ngram)

    def show_start(self, running: bool, why: str, waiting: bool) -> None:
        """Start is enabled when no run is on and there is no reason `why` against it. The reason is said where
        the eye is, on the speed line: the red text in the form can be scrolled out of view (a new user loaded a
        2-character corpus and saw only a grey Start and "idle"). The line holds two lines, so a long reason
        shows its first clause, whole in the tooltip; `waiting`: it passes by itself (a corpus loading), so it is
        not red. When the reason goes, the line it covered (a finished run's figures) comes back."""
        self.start_button.setEnabled(not running and not why)
        self.start_button.setToolTip(f"Cannot start: {why}" if why else START_TIP)
        if why and not running:
            if not self._reason_shown:
                self._speed_under = (self.speed.text(), self.speed.toolTip())
            short = why if len(why) <= REASON_CHARS else why.split(": ")[0].split("; ")[0][:REASON_CHARS]
            self.speed.setText(f"Cannot start yet: {escape(short)}" if waiting else
                               f"<span style='color:#b00020'>Cannot start: {escape(short)}</span>")
            self.speed.setToolTip(f"Cannot start: {why}")
            self._reason_shown = True
        elif self._reason_shown:
            self.speed.setText(self._speed_under[0])
            self.speed.setToolTip(self._speed_under[1])
            self._reason_shown = False

    def set_speed(self, text: str) -> None:
        """Set the speed line from outside a report (cleared for a loaded checkpoint or a run that never
        started); while it shows why Start is disabled, this is what comes back after the reason."""
        if self._reason_shown:
            self._speed_under = (text, "")
        else:
            self.speed.setText(text)
            self.speed.setToolTip("")

    def show_report(self, r, unit: str, eta: bool = True) -> None:
        """A training report on the bar and the speed line; `unit` counts the bar ("step", or "order" for an
        n-gram, counted one order at a time). eta False: the run is ending, so no time left is shown (it would
        count down a run that has stopped)."""
        self.progress.setMaximum(max(r.max_steps, 1))
        self.progress.setValue(min(r.step, r.max_steps))
        eta = "" if r.eta_s is None or not eta else f" · ETA {format_duration(r.eta_s)}"
        self.progress.setFormat(f"{unit} {r.step:,} / {r.max_steps:,} (%p%){eta}")
        self._reason_shown = False
        self.speed.setToolTip("")
        self.speed.setText(f"{r.tokens_per_s:,.0f} tokens/s · {r.tokens:,} tokens · "
                           f"{format_duration(r.elapsed_s)} elapsed")


def format_duration(seconds: float) -> str:
    """'42 s', '3 min 05 s' or '2 h 07 min' for a duration in seconds."""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"
