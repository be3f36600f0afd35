"""BPTT gradient norms for the current recurrent model, and side by side the same text through a second
checkpoint (say a tanh RNN next to an LSTM), on the same log scale: vanishing gradients seen, not told."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.common.bptt_chart import BPTTChart, LossChoice, describe_loss, log_span, underflow_note


class GradientView(QWidget):
    compare_requested = Signal()     # the panel asks for a checkpoint folder and loads it on a job
    contrast_requested = Signal()    # the panel trains the contrasting recurrent model on a job
    loss_changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.loss = LossChoice()
        self.layer = QComboBox()
        self.layer.setToolTip("Which recurrent layer's h_t")
        self.compare_btn = QPushButton("Compare with a checkpoint…")
        self.compare_btn.setToolTip("Run the same text through another saved model (an RNN next to an LSTM, say) "
                                    "and draw its gradients beside these on the same scale")
        self.contrast_btn = QPushButton("Train an RNN beside it")
        self.contrast_btn.setToolTip("One click: train the contrasting model here (a tanh RNN beside an LSTM or GRU, "
                                     "an LSTM beside a tanh RNN), as wide and with the same tokenizer, for "
                                     "300 steps on the validation text, and draw its gradients beside these")
        self.clear_btn = QPushButton("Remove")
        self.clear_btn.setToolTip("Remove the comparison chart")
        self.clear_btn.hide()
        top = QHBoxLayout()
        top.addWidget(self.loss)
        top.addWidget(self.layer)
        top.addStretch(1)
        beside = QHBoxLayout()       # a row of its own: beside the loss choice it widened the window past 1280 px
        beside.addWidget(QLabel("Compare:"))
        beside.addWidget(self.contrast_btn)
        beside.addWidget(self.compare_btn)
        beside.addWidget(self.clear_btn)
        beside.addStretch(1)
        self.charts = [BPTTChart("#ef6c00", 260), BPTTChart("#1565c0", 260)]
        self.charts[1].hide()
        row = QHBoxLayout()
        for c in self.charts:
            row.addWidget(c, 1)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setStyleSheet("color: #37474f")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addLayout(beside)
        lay.addLayout(row, 1)
        lay.addWidget(self.summary)
        self.results: list[tuple[str, object] | None] = [None, None]   # (model description, BPTT) per chart
        self.layer.currentIndexChanged.connect(lambda _: self._draw())
        self.loss.changed.connect(self.loss_changed)
        self.compare_btn.clicked.connect(self.compare_requested)
        self.contrast_btn.clicked.connect(self.contrast_requested)
        self.clear_btn.clicked.connect(lambda: self.set_result(1, None))

    def set_family(self, family: str) -> None:
        """Name the one-click contrast after what it would train beside a model of `family`."""
        self.contrast_btn.setText("Train an LSTM beside it" if family == "rnn" else "Train a tanh RNN beside it")

    def set_result(self, which: int, result) -> None:
        """which 0: the current model, 1: the comparison; result (name, BPTT) or None."""
        self.results[which] = result
        if which == 0 and result is not None:
            n_layer = result[1].norms.shape[0]
            if self.layer.count() != n_layer:
                self.layer.blockSignals(True)
                self.layer.clear()
                self.layer.addItems([f"layer {k + 1}" for k in range(n_layer)])
                self.layer.setCurrentIndex(n_layer - 1)
                self.layer.blockSignals(False)
            self.layer.setVisible(n_layer > 1)
            self.loss.set_positions(result[1].norms.shape[1])
        self.charts[1].setVisible(self.results[1] is not None)
        self.clear_btn.setVisible(self.results[1] is not None)
        self._draw()

    def _norms(self, bptt) -> np.ndarray:
        return bptt.norms[min(self.layer.currentIndex(), bptt.norms.shape[0] - 1)]

    def _draw(self) -> None:
        lines = []
        shown = [(chart, result) for chart, result in zip(self.charts, self.results) if result is not None]
        span = log_span([self._norms(b) for _, (_, b) in shown])     # one scale for both charts
        for chart, (name, b) in shown:
            norms = self._norms(b)
            chart.show_norms(norms, f"{name}: {describe_loss(b.loss_at, len(norms))}", span)
            nz = norms[norms > 0]
            if len(nz):
                under = underflow_note(norms, b.loss_at)
                lines.append(f"{name}: ‖∂L/∂h_t‖ from {nz[-1]:.3g} at t = {np.flatnonzero(norms)[-1] + 1} to "
                             f"{nz[0]:.3g} at t = {np.flatnonzero(norms)[0] + 1} (ratio {nz[0] / nz[-1]:.2g}); "
                             f"L = {b.loss:.4f} nats" + (f"; {under}" if under else ""))
        self.summary.setText("\n".join(lines) + ("\nEach bar is torch.autograd's gradient of L with respect to "
                                                 "h_t, through every later step. Bars shrinking towards t = 1 "
                                                 "mean vanishing gradients." if lines else ""))
