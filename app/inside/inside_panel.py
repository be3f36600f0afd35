"""The Inside tab: look inside the current model on a text. Neuron activations over the text and the units that
track simple features of it, every attention head, the logit lens, and the BPTT gradient norms (with a second
checkpoint side by side).

The whole computation (engine.inside.look_inside) runs on a JobRunner job over the model snapshot; what comes back
is numpy data, drawn on the GUI thread. A newer request replaces an older one (its late answer is dropped), and
editing the text or the model moving on marks the view stale until the next Refresh."""
from __future__ import annotations

import random
import threading
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QSpinBox,
                               QStackedWidget, QTabWidget, QVBoxLayout, QWidget)

from app.common.jobs import JobRunner
from app.common.text_window import random_window
from app.inside.attention_view import AttentionView
from app.inside.gradient_view import GradientView
from app.inside.lens_view import LensView
from app.inside.neuron_view import NeuronView
from app.inside.scales import sequential
from engine.inside import bptt_norms, look_inside

DEFAULT_TOKENS = 128
PAGES = ("Neurons", "Attention", "Logit lens", "Gradients (BPTT)")
PART_OF_PAGE = {"Attention": "attention", "Logit lens": "lens", "Gradients (BPTT)": "bptt"}


class InsidePanel(QWidget):
    contrast_progress = Signal(int, int)   # emitted on the worker thread, queued to the GUI thread (step, steps)

    def __init__(self, source, parent: QWidget | None = None):
        super().__init__(parent)
        self.source = source
        self.rng = random.Random()
        self.handle = None            # cached snapshot, dropped on source.changed
        self.shown_handle = None      # the model whose result is on screen (a new loss choice recomputes on it)
        self.compare = None           # (name, ModelHandle) of the comparison checkpoint
        self._contrast_cancel = None  # threading.Event of a one-click comparison being trained
        self.inside = None            # the last look_inside result on screen
        self.shown_text = ""
        self.jobs = JobRunner(self)
        self._request = 0
        self._bptt_request = 0
        self._build_ui()
        self.source.changed.connect(self._source_changed)
        self._source_changed()

    # -- widgets -----------------------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        self.text = QPlainTextEdit()
        self.text.setPlaceholderText("Type a text for the model to read, or take a random validation window")
        self.text.setFixedHeight(64)
        self.length = QSpinBox()
        self.length.setRange(8, 2048)
        self.length.setValue(DEFAULT_TOKENS)
        self.length.setSuffix(" tokens")
        self.length.setToolTip("How long a random window is")
        self.random_btn = QPushButton("Random window")
        self.random_btn.setToolTip("Fill in a random stretch of the validation text (as many tokens as chosen) "
                                   "and refresh")
        self.refresh_btn = QPushButton("Refresh")
        self.refresh_btn.setToolTip("Take the current model (a new snapshot while training) and look inside it "
                                    "on the text")
        self.refresh_btn.setDefault(True)
        buttons = QVBoxLayout()
        buttons.addWidget(self.length)
        buttons.addWidget(self.random_btn)
        buttons.addWidget(self.refresh_btn)
        top = QHBoxLayout()
        top.addWidget(self.text, 1)
        top.addLayout(buttons)
        self.model_label = QLabel()
        self.model_label.setWordWrap(True)
        self.model_label.setStyleSheet("color: #546e7a")
        self.status = QLabel()
        self.status.setWordWrap(True)

        self.neurons, self.attention, self.lens, self.gradients = (NeuronView(), AttentionView(), LensView(),
                                                                   GradientView())
        self.pages = QTabWidget()
        self.stacks: dict[str, QStackedWidget] = {}
        self.reasons: dict[str, QLabel] = {}
        for name, view in zip(PAGES, (self.neurons, self.attention, self.lens, self.gradients)):
            stack = QStackedWidget()
            reason = QLabel()
            reason.setWordWrap(True)
            reason.setAlignment(Qt.AlignCenter)
            reason.setStyleSheet("color: #607d8b; font-size: 12pt; padding: 40px")
            stack.addWidget(reason)
            stack.addWidget(view)
            self.stacks[name], self.reasons[name] = stack, reason
            self.pages.addTab(stack, name)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.model_label)
        lay.addWidget(self.status)
        lay.addWidget(self.pages, 1)
        self._show_reason_everywhere("Press Refresh to look inside the current model on the text above.")

        self.random_btn.clicked.connect(self.random_validation_window)
        self.refresh_btn.clicked.connect(self.refresh)
        self.text.textChanged.connect(self._mark_stale)
        self.gradients.loss_changed.connect(self.recompute_bptt)
        self.gradients.compare_requested.connect(self.ask_compare)
        self.gradients.contrast_requested.connect(self.train_contrast)
        self.contrast_progress.connect(self._contrast_progress)

    def _show_reason_everywhere(self, text: str) -> None:
        for name in PAGES:
            self.reasons[name].setText(text)
            self.stacks[name].setCurrentIndex(0)

    # -- model and text ----------------------------------------------------------------------------------------
    def _source_changed(self) -> None:
        self.handle = None
        self.model_label.setText(f"Model: {self.source.describe()}")
        if self.inside is not None:
            self._mark_stale()

    def _mark_stale(self) -> None:
        if self.inside is not None and not self.status.text().startswith("Computing"):
            self._say("The view below shows the text and model as of the last Refresh: press Refresh to update it.",
                      warn=True)

    def _say(self, text: str, warn: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("background: #fff3e0; padding: 3px" if warn else "color: #37474f")

    def _model(self):
        if self.handle is None:
            self.handle = self.source.snapshot()
        return self.handle

    def current_text(self) -> str:
        return self.text.toPlainText()

    def random_validation_window(self) -> None:
        val = self.source.validation_text()
        tokenizer = self.source.tokenizer()   # no weight snapshot here: refresh() takes the one it needs
        if tokenizer is None or not val:
            self._say("There is no model or validation text yet: train a model or load a checkpoint first.", True)
            return
        try:
            window = random_window(val, tokenizer, self.length.value(), self.rng, line_start=True)
        except Exception as e:  # noqa: BLE001 — a tokenizer's complaint is shown, not raised
            self._say(str(e), True)
            return
        self.text.setPlainText(window)
        self.refresh()

    def showEvent(self, event) -> None:
        """The first time the tab is shown with a model and no text, look at a random validation window."""
        super().showEvent(event)
        if self.inside is None and not self.current_text() and self.source.has_model():
            self.random_validation_window()

    # -- computing ---------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Look inside the current model on the text, on a background job."""
        self.handle = None
        if not self.source.has_model():
            self._say("No model yet: train one with the panel on the left or load a checkpoint.", True)
            return
        text = self.current_text()
        if not text:
            self._say("Type a text (or take a random window) first.", True)
            return
        loss_at = self.gradients.loss.value()
        compare = self.compare
        source = self.source

        def work():
            handle = source.snapshot()   # copying a training run's weights: here, not on the GUI thread
            if handle is None:
                raise ValueError("the model is gone: train one or load a checkpoint")
            inside = look_inside(handle.model, handle.tokenizer, text, loss_at)
            colours = None if inside.attention is None else sequential(inside.attention)   # off the GUI thread
            return handle, inside, colours, _compare_bptt(compare, text, loss_at)

        self._request += 1
        request = self._request
        self._say("Computing…")   # Refresh stays enabled: a newer request replaces this one
        self.jobs.run(work, lambda r: self._done(request, text, r), lambda m: self._failed(request, m))

    def _done(self, request: int, text: str, result) -> None:
        if request != self._request:
            return
        handle, inside, colours, other = result
        self.inside, self.shown_text, self.shown_handle = inside, text, handle
        self._show(inside, colours)
        if other is not None:
            self.gradients.set_result(1, other)
        done = f"{len(inside.tokens)} tokens, {inside.family}."
        self._say(f"{done} {inside.note[0].upper() + inside.note[1:]}." if inside.note else done,
                  warn=bool(inside.note))

    def _failed(self, request: int, message: str) -> None:
        if request != self._request:
            return
        self.inside, self.shown_text = None, ""
        self._show_reason_everywhere(message)
        self._say(message, warn=True)

    def _show(self, ins, attention_colours=None) -> None:
        self.neurons.set_inside(ins)
        self.stacks["Neurons"].setCurrentIndex(1)
        shown = {"Attention": ins.attention is not None, "Logit lens": ins.lens is not None,
                 "Gradients (BPTT)": ins.bptt is not None}
        if ins.attention is not None:
            self.attention.set_attention(ins.attention, ins.head_entropy, ins.tokens, attention_colours)
        if ins.lens is not None:
            self.lens.set_lens(ins.lens, ins.tokens)
        if ins.bptt is not None:
            self.gradients.set_family(ins.family)
            self.gradients.set_result(0, (f"this {ins.family.upper()}", ins.bptt))
        for page, ok in shown.items():
            self.stacks[page].setCurrentIndex(1 if ok else 0)
            if not ok:
                self.reasons[page].setText(ins.missing.get(PART_OF_PAGE[page], ""))

    def recompute_bptt(self) -> None:
        """Only the gradient norms, for a new choice of loss (cheap: one forward and backward)."""
        if self.inside is None or self.inside.bptt is None or self.shown_handle is None:
            return
        model, tokenizer, text = self.shown_handle.model, self.shown_handle.tokenizer, self.shown_text
        loss_at, compare = self.gradients.loss.value(), self.compare
        family, n_tokens = self.inside.family, len(self.inside.tokens)

        def work():
            ids = tokenizer.encode(text)[:n_tokens]
            mine = bptt_norms(model, ids, loss_at, [tokenizer.token_str(i) for i in ids[:-1]])
            return (f"this {family}", mine), _compare_bptt(compare, text, loss_at)

        self._bptt_request += 1
        request = self._bptt_request
        self.jobs.run(work, lambda r: self._bptt_done(request, r), lambda m: self._say(m, True))

    def _bptt_done(self, request: int, result) -> None:
        if request != self._bptt_request:
            return
        mine, other = result
        self.gradients.set_result(0, mine)
        self.gradients.set_result(1, other)

    # -- comparison checkpoint ---------------------------------------------------------------------------------
    def ask_compare(self) -> None:
        path = self.ask_checkpoint_dir()
        if path:
            self.compare_with(path)

    def ask_checkpoint_dir(self) -> str:
        """A checkpoint folder to compare with ("" when cancelled); tests replace this."""
        return QFileDialog.getExistingDirectory(self, "Checkpoint to compare with")

    def compare_with(self, path: str) -> None:
        """Load a checkpoint on a job and draw its BPTT norms on the same text next to the current model's."""
        from engine import api
        text, loss_at = self.shown_text or self.current_text(), self.gradients.loss.value()

        def work():
            handle = api.load_checkpoint(path)
            pair = (f"{handle.family.upper()} ({Path(path).name})", handle)
            return pair, _compare_bptt(pair, text, loss_at)

        self._say(f"Loading {path}…")
        self.jobs.run(work, self._compare_loaded, lambda m: self._say(m, True))

    def train_contrast(self) -> None:
        """The one-click comparison: train the contrasting recurrent model (engine.inside.contrast) on the
        validation text on a job, with progress, then draw its gradients beside the current model's."""
        handle = self._model()
        if handle is None or handle.family not in ("rnn", "lstm", "gru"):
            self._say("The comparison is for RNN, LSTM and GRU models: load or train one first.", True)
            return
        from engine.inside import contrast
        text, loss_at = self.shown_text or self.current_text(), self.gradients.loss.value()
        corpus = self.source.validation_text()
        other = contrast.contrast_family(handle.family)
        cancel = self._contrast_cancel = threading.Event()

        def work():
            family, trained, val = contrast.train_contrast(handle.model, handle.tokenizer, corpus, cancel=cancel,
                                                           steps=contrast.CONTRAST_STEPS,
                                                           progress=lambda k, n: self.contrast_progress.emit(k, n))
            name = "tanh RNN" if family == "rnn" else family.upper()
            pair = (f"{name} trained here ({trained.meta['steps']} steps)", trained)
            return pair, _compare_bptt(pair, text, loss_at), val, (text, loss_at)

        self._contrast_model = self.source.describe()
        self.gradients.contrast_btn.setEnabled(False)
        self._say(f"Training a {'tanh RNN' if other == 'rnn' else 'LSTM'} on the validation text to compare…")
        self.jobs.run(work, self._contrast_done, self._contrast_failed)

    def _contrast_progress(self, step: int, steps: int) -> None:
        if not self.gradients.contrast_btn.isEnabled():
            self._say(f"Training the comparison model: step {step} of {steps}…")

    def _contrast_done(self, result) -> None:
        self.gradients.contrast_btn.setEnabled(True)
        if _model_identity(self.source.describe()) != _model_identity(self._contrast_model):
            self._say("The model changed while the comparison was training, so it was dropped: press the button "
                      "again to compare with this model.", True)
            return
        pair, other, val, used = result
        now = (self.shown_text or self.current_text(), self.gradients.loss.value())
        about = (f"Comparing with a {pair[0]} on the same text; its validation loss on the last 10% of the "
                 f"validation text is {val:.3f} nats/token.")
        if used != now:   # refreshed on another text (or loss) while it trained: its gradients on the one shown
            text, loss_at = now

            def done(bptt) -> None:
                self._compare_loaded((pair, bptt))
                self._say(about)
            self.jobs.run(lambda: _compare_bptt(pair, text, loss_at), done, lambda m: self._say(m, True))
            return
        self._compare_loaded((pair, other))
        self._say(about)

    def _contrast_failed(self, message: str) -> None:
        self.gradients.contrast_btn.setEnabled(True)
        self._say(message, True)

    def _compare_loaded(self, result) -> None:
        pair, other = result
        self.compare = pair
        self.gradients.set_result(1, other)
        self._say(f"Comparing with {pair[0]} on the same text.")

    def shutdown(self) -> None:
        if self._contrast_cancel is not None:
            self._contrast_cancel.set()
        self.jobs.wait()


def _compare_bptt(compare, text: str, loss_at):
    """(name, BPTT) for the comparison model on `text`, or None when there is none; a model without recurrence
    or a text its tokenizer cannot read raises, and the message reaches the panel."""
    if compare is None or not text:
        return None
    name, handle = compare
    if handle.family not in ("rnn", "lstm", "gru"):
        from engine.inside import InsideError
        raise InsideError(f"{name} is a {handle.family}: only RNN, LSTM and GRU models have BPTT gradients")
    ids = handle.tokenizer.encode(text)
    from engine.inside import token_limit
    ids = ids[:token_limit(handle.model)]
    return name, bptt_norms(handle.model, ids, loss_at, [handle.tokenizer.token_str(i) for i in ids[:-1]])


def _model_identity(description: str) -> str:
    """ModelSource.describe() without the step a training run moves on (the same model, a later step)."""
    return description.split(", step")[0]
