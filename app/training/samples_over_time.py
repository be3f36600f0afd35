"""The "samples over time" view: one prompt and one seed sampled from every past model the run kept, one row per
step, so a learner reads how the model's writing changed as it trained (engine.api.Run.samples_over_time). The
sampling runs on a worker thread; only the finished rows (plain strings) come back to this dialog."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QDialog, QFormLayout, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QPushButton,
                               QSpinBox, QTableWidget, QTableWidgetItem, QVBoxLayout)

from app.common.jobs import JobRunner


class SamplesOverTime(QDialog):
    finished_rows = Signal(int)   # rows shown after a Generate (0 when it failed)

    def __init__(self, run, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Samples over time")
        self.run = run
        self.prompt = QLineEdit("The ")
        self.prompt.setToolTip("The same prompt is continued by every kept past model.")
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1, value=1)
        self.seed.setToolTip("The same seed for every row: the rows differ only by what training changed.")
        self.tokens = QSpinBox(minimum=1, maximum=1000, value=80)
        self.generate_button = QPushButton("Generate")
        self.generate_button.clicked.connect(self.generate)
        self.status = QLabel()
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["step", "sample"])
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.Stretch)
        self.table.verticalHeader().hide()
        self.table.setWordWrap(True)
        form = QFormLayout()
        form.addRow("prompt", self.prompt)
        row = QHBoxLayout()
        row.addWidget(QLabel("seed"))
        row.addWidget(self.seed)
        row.addWidget(QLabel("new tokens"))
        row.addWidget(self.tokens)
        row.addStretch(1)
        row.addWidget(self.generate_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(row)
        layout.addWidget(self.status)
        layout.addWidget(self.table, 1)
        self.resize(900, 600)
        self._jobs = JobRunner(self)

    def generate(self) -> None:
        self.generate_button.setEnabled(False)
        self.status.setText(f"sampling {len(self.run.snapshot_steps())} past models…")
        prompt, seed, n = self.prompt.text(), self.seed.value(), self.tokens.value()
        self._jobs.run(lambda: self.run.samples_over_time(prompt, seed, n),
                       lambda rows: self._show(rows, prompt, seed), self._failed)

    def _show(self, rows: list, prompt: str, seed: int) -> None:
        """The rows sampled for `prompt` and `seed` (as asked, even if the fields were edited meanwhile)."""
        self.table.setRowCount(len(rows))
        for i, (step, text) in enumerate(rows):
            step_item = QTableWidgetItem(f"{step:,}")
            step_item.setTextAlignment(Qt.AlignRight | Qt.AlignTop)
            self.table.setItem(i, 0, step_item)
            self.table.setItem(i, 1, QTableWidgetItem(prompt + text))
        self.table.resizeRowsToContents()
        self.status.setText(f"prompt {prompt!r}, seed {seed}, one row per kept step")
        self.generate_button.setEnabled(True)
        self.finished_rows.emit(len(rows))

    def _failed(self, message: str) -> None:
        self.status.setText(f"Could not sample: {message}")
        self.generate_button.setEnabled(True)
        self.finished_rows.emit(0)

    def done(self, result: int) -> None:
        self._jobs.wait()   # a sampling job must end before the dialog goes
        super().done(result)
