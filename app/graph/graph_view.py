"""The Graph tab: pick the lecture example or the current model on a short text, watch the tape fill in forward
and the gradients flow back one step at a time, and click any node to inspect it.

Recording the tape (bridge.build_tape) and laying it out run on a worker thread; the finished program is handed
over once and from then on belongs to the GUI thread, which owns the Stepper. A step touches only the items of the
node it stepped and that node's inputs (the only nodes whose state can change), so it stays cheap on 1,000 nodes.
Stepping is in stepping.py; the source row, toolbar, legend and gradient strip in graph_controls.py; the
Qt-free preparation (recording, layout, text windows, h_t gradient norms) in graph_data.py."""
from __future__ import annotations

import random
import threading
from dataclasses import replace

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QSplitter, QVBoxLayout, QWidget

from app.graph.graph_controls import FANOUT, LECTURE, MODEL, NEWLINE_MARK, GradientStrip, SourceBar, SteppingBar, legend
from app.common.text_window import random_window
from app.graph.graph_data import build_model_tape, finished_grad_norms, hidden_states_by_layer, record_and_layout
from app.common.bptt_chart import describe_loss
from app.common.jobs import JobRunner
from app.graph.graph_layout import FOLD_MAX_UNITS, layout
from app.graph.graph_scene import (COMPUTED, FORWARD, GRAD_DONE, GRAD_PARTIAL, GRADIENT, PENDING, GraphScene,
                                    GraphView)
from app.common.workers import error_message
from app.graph.node_inspector import NodeInspector
from app.graph.rule_text import lecture_titles
from app.graph.stepping import Stepping
from app.graph.tape_stack import TapeStack
from engine.autodiff.check import fd_check_node
from engine.autodiff.lecture import lecture_example, lecture_fanout_example
from engine.autodiff.stepper import Stepper
from engine.autodiff.tape import Tape


class GraphPanel(Stepping, QWidget):
    def __init__(self, source, parent: QWidget | None = None):
        super().__init__(parent)
        self.source = source
        self.rng = random.Random()
        self.handle = None          # cached snapshot, dropped on source.changed
        self.program = self.stepper = self.spec = self.lay = None
        self.program_from_model = False   # the graph shown is of a model snapshot (not the lecture)
        self.titles: dict[int, str] = {}  # node id -> title with the lecture's name ("a = Linear(α)")
        self.collapsed: set[str] = set()
        self.current: int | None = None
        self.h_by_layer: dict[int, list[int]] = {}   # RNN layer -> its h_t node ids, for the gradient strip
        self.tape_source = None     # (model, tokenizer, text) the shown tape was recorded from; None: lecture
        self._random_text = ""      # the text box's content as the last random window filled it
        self._end_cancel: threading.Event | None = None   # set while End runs on a worker; set() cancels it
        self._end_timer = QTimer(self)
        self._end_timer.setInterval(100)
        self._end_timer.timeout.connect(self._end_progress)
        self.bptt = None            # engine.inside.BPTT for the strip's chosen single-position loss
        self._bptt_request = 0
        self._h_nodes: set[int] = set()
        self.jobs = JobRunner(self)
        self._request = 0
        self._build_ui()
        self.source.changed.connect(self._source_changed)
        self._source_changed()
        self.show_lecture()

    # -- widgets -----------------------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        top = SourceBar()
        self.what, self.text, self.length = top.what, top.text, top.length
        self.random_btn, self.build_btn, self.refresh_btn = top.random_btn, top.build_btn, top.refresh_btn
        self.model_label = QLabel()
        self.model_label.setWordWrap(True)
        self.model_label.setStyleSheet("color: #546e7a")

        self.message = QLabel()
        self.message.setWordWrap(True)
        self.lecture_btn = QPushButton("Show the lecture example")
        self.message_bar = QFrame()
        self.message_bar.setStyleSheet("QFrame { background: #fff3e0; border: 1px solid #ffb74d; }")
        bar = QHBoxLayout(self.message_bar)
        bar.addWidget(self.message, 1)
        bar.addWidget(self.lecture_btn)
        self.message_bar.hide()

        self.scene = GraphScene(self)
        self.view = GraphView(self.scene)
        self.view.opening_resized.connect(self._refold)
        self.strip_box = GradientStrip()
        self.strip_box.hide()
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.view, 1)
        ll.addWidget(self.strip_box)
        self.inspector = NodeInspector()
        self.tape_stack = TapeStack()
        right = QSplitter(Qt.Vertical)      # the tape as the lecture's stack above the node inspector
        right.addWidget(self.tape_stack)
        right.addWidget(self.inspector)
        right.setStretchFactor(0, 1)
        right.setStretchFactor(1, 2)
        right.setSizes([300, 600])
        split = QSplitter(Qt.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        split.setSizes([3000, 1100])   # proportions; the inspector gets about a quarter

        controls = SteppingBar(self)
        self.buttons, self.speed = controls.buttons, controls.speed
        self.counter, self.loss_label = controls.counter, controls.loss_label
        self.sentence = QLabel()
        self.sentence.setWordWrap(True)
        self.sentence.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.sentence.setStyleSheet("font-size: 11pt; padding: 2px")

        root = QVBoxLayout(self)
        root.addLayout(top)
        root.addWidget(self.model_label)
        root.addWidget(self.message_bar)
        root.addWidget(split, 1)
        root.addWidget(legend())
        root.addLayout(controls)
        bottom = QHBoxLayout()     # the sentence wraps, so the growing counter beside it cannot widen the tab
        bottom.addWidget(self.sentence, 1)
        bottom.addWidget(self.loss_label)
        bottom.addWidget(self.counter)
        root.addLayout(bottom)

        self.timer = QTimer(self)
        self.timer.timeout.connect(self._tick)
        self.speed.valueChanged.connect(lambda v: self.timer.setInterval(1000 // v))
        self.timer.setInterval(1000 // self.speed.value())
        self.what.currentTextChanged.connect(self._mode_changed)
        self.random_btn.clicked.connect(self.random_validation_window)
        self.build_btn.clicked.connect(self.build)
        self.refresh_btn.clicked.connect(self.refresh_model)
        self.text.returnPressed.connect(self.build)
        self.text.textChanged.connect(self._text_changed)
        self.length.valueChanged.connect(self._length_changed)
        self.lecture_btn.clicked.connect(self.show_lecture)
        b = self.buttons
        b["reset"].clicked.connect(lambda: self._jump(self.stepper.reset))
        b["back"].clicked.connect(self.step_back)
        b["forward"].clicked.connect(lambda: self._step(self.stepper.step_forward))
        b["backward"].clicked.connect(lambda: self._step(self.stepper.step_backward))
        b["step"].clicked.connect(lambda: self._step(self.stepper.step))
        b["play"].clicked.connect(self.toggle_play)
        b["end"].clicked.connect(self.run_to_end)
        b["fit"].clicked.connect(lambda: self.view.fit(None if self.current is None else
                                                       self.scene.unit_item(self.current).pos()))
        self.scene.node_clicked.connect(self.inspect)
        self.tape_stack.list.clicked.connect(lambda i: self.inspect(self.tape_stack.model.node_at(i.row())))
        self.scene.group_toggled.connect(self.toggle_group)
        self.inspector.fd_requested.connect(self.fd_check)
        self.strip_box.layer.currentIndexChanged.connect(lambda _: self._update_strip())
        self.strip_box.loss.changed.connect(self._loss_choice_changed)
        self._mode_changed(LECTURE, build=False)
        self._update_controls()

    # -- choosing what to show ---------------------------------------------------------------------------------
    def _source_changed(self) -> None:
        """The model moved on (or was replaced): a graph of the old snapshot is now stale."""
        self.handle = None
        self._show_model_label(stale=self.program is not None and self.program_from_model)

    def _show_model_label(self, stale: bool) -> None:
        hint = " — press Refresh model to see the new weights" if stale else ""
        text = self.text.text().replace(NEWLINE_MARK, "\n")
        if self.tape_source is not None and text != self.tape_source[2]:
            shown = self.tape_source[2].replace("\n", NEWLINE_MARK)
            shown = shown if len(shown) <= 24 else shown[:23] + "…"
            hint += (f" — the graph below is of the earlier text “{shown}”: press Build graph (Enter) for the "
                     f"text above")
        self.model_label.setText(f"Model: {self.source.describe()}{hint}")
        self.model_label.setStyleSheet("color: #546e7a" if not hint else "color: #bf360c")

    def _text_changed(self) -> None:
        """Typed or pasted text: the graph (if of a model) is now of another text, and says so."""
        self._show_model_label(stale=self.handle is None and self.program_from_model)

    def _length_changed(self) -> None:
        """The window length applies to random windows: a random window on show is redrawn at the new length,
        so the spin never looks ignored; typed text stays as typed."""
        if self.what.currentText() == MODEL and self.text.text() and self.text.text() == self._random_text:
            self.random_validation_window()

    def _mode_changed(self, mode: str, build: bool = True) -> None:
        model = mode == MODEL
        for w in (self.text, self.length, self.random_btn, self.refresh_btn):
            w.setEnabled(model)
        if model and not self.text.text() and self.source.validation_text():
            self.random_validation_window()
        if build and not model and self._end_cancel is None:   # a lecture example records in ms: show it at once
            self.build()

    def show_lecture(self) -> None:
        if self.what.currentText() != LECTURE:
            self.what.setCurrentText(LECTURE)      # builds it (_mode_changed)
        else:
            self.build()

    def _model(self):
        """The cached snapshot, taking one if needed; None (with the message shown) when there is no model."""
        if self.handle is None:
            self.handle = self.source.snapshot()
            if self.handle is not None:    # a random window longer than the tape takes would only fail later
                from engine.autodiff.bridge import max_tape_tokens
                self.length.setMaximum(min(64, max_tape_tokens(self.handle.model) - 1))
        if self.handle is None:
            self.show_message("No model has been trained yet: train one with the panel on the left or load a checkpoint. "
                              "Meanwhile the lecture example shows how the tape works.")
        return self.handle

    def random_validation_window(self) -> None:
        val = self.source.validation_text()
        if not val:
            self.show_message("There is no validation text yet: load a corpus and start a run first.")
            return
        handle = self._model()
        if handle is not None:
            try:
                self._random_text = (random_window(val, handle.tokenizer, self.length.value() + 1, self.rng)
                                     .replace("\n", NEWLINE_MARK))
                self.text.setText(self._random_text)
            except Exception as e:  # noqa: BLE001 — a tokenizer's complaint is shown, not raised
                self.show_message(error_message(e))

    def refresh_model(self) -> None:
        self.handle = None
        self.build()

    def build(self) -> None:
        """Record the chosen tape on a worker thread; the result replaces the graph when it arrives."""
        self.pause()
        from_model = self.what.currentText() == MODEL
        source = None
        if not from_model:
            fn = lecture_fanout_example if self.what.currentText() == FANOUT else lecture_example
        else:
            handle = self._model()
            if handle is None:
                return
            model, tokenizer, text = handle.model, handle.tokenizer, self.text.text().replace(NEWLINE_MARK, "\n")
            fn = lambda: build_model_tape(model, tokenizer, text)  # noqa: E731
            source = (model, tokenizer, text)
        self._request += 1
        request = self._request
        self.message_bar.hide()
        self.counter.setText("recording the tape…")
        width = self.view.viewport().width()
        self.jobs.run_latest("tape", lambda: record_and_layout(fn, width), lambda r: self._built(request, r, source),
                             lambda msg: self._build_failed(request, msg))

    def shutdown(self) -> None:
        """Cancel a running End and wait for running jobs (the main window calls this before closing)."""
        if self._end_cancel is not None:
            self._end_cancel.set()
        self.jobs.wait()

    def show_message(self, text: str) -> None:
        self.message.setText(text)
        self.message_bar.show()
        self._update_controls()

    def _build_failed(self, request: int, message: str) -> None:
        """No tape came of the build: the old graph goes too, so nothing on screen belongs to another text or
        model than the one the message is about."""
        if request != self._request:
            return
        self.clear_graph()
        self.show_message(message)

    def clear_graph(self) -> None:
        """Nothing to step, inspect or plot: an empty scene, no strip, stepping off."""
        self.pause()
        self.program = self.stepper = self.spec = self.lay = None
        self.program_from_model = False
        self.tape_source = self.bptt = None
        self._show_model_label(stale=False)
        self.current = None
        self.h_by_layer, self._h_nodes = {}, set()
        self.scene.clear_graph()
        self.view.update_minimap(refit=True)
        self.strip_box.hide()
        self.inspector.set_program(None, None)
        self.tape_stack.set_program(None)
        self.counter.setText("no graph")
        self.loss_label.setText("")
        self.sentence.setText("")
        self._update_controls()

    def _built(self, request: int, result, source) -> None:
        if request != self._request:
            return                    # an older build finished after a newer one was asked for
        self.program, self.spec, self.collapsed, self.lay = result
        self.program_from_model = source is not None
        self.tape_source, self.bptt = source, None
        self._show_model_label(stale=False)
        self.stepper = Stepper(self.program)
        self.titles = lecture_titles(self.program)    # "a = Linear(α)": the lecture's names on its nodes
        self.tape_stack.set_program(self.stepper, self.titles)
        self._fwd_index = np.full(len(self.program.nodes), -1)
        self._fwd_index[self.stepper.ops] = np.arange(self.stepper.n_forward)
        self._find_hidden_states()
        self.current = None
        self.inspector.set_program(self.program, self.stepper)
        self._redraw_all()
        self.view.start_view()

    # -- drawing state -----------------------------------------------------------------------------------------
    def node_state(self, i: int) -> int:
        node = self.program.nodes[i]
        if node.grad is not None:
            return GRAD_DONE if self.stepper.grad_complete(i) else GRAD_PARTIAL
        return COMPUTED if node.value is not None else PENDING

    def _refresh_units(self, units) -> None:
        unit_of, pos, n_steps = self.lay.unit_of, self.stepper.position, self.stepper.n_steps
        cur = -1 if self.current is None else unit_of[self.current]
        for u in units:
            item, node_id = self.scene.units[u], self.lay.unit_node[u]
            if node_id >= 0:
                item.set_state(self.node_state(node_id), u == cur)
                continue
            members = self.scene.members[u]
            states = {self.node_state(i) for i in members}
            fi = self._fwd_index[members]
            fi = fi[fi >= 0]
            fwd = float((pos > fi).mean()) if len(fi) else 1.0
            bwd = float((pos >= n_steps - fi).mean()) if len(fi) else 0.0
            state = (GRAD_PARTIAL if GRAD_PARTIAL in states or (GRAD_DONE in states and bwd < 1)
                     else GRAD_DONE if GRAD_DONE in states else COMPUTED if fwd > 0 else PENDING)
            item.set_state(state, u == cur, (fwd, bwd))

    def _refold(self) -> None:
        """The view's width changed before the user moved it: a small graph is laid out again, folded into bands
        or unfolded to suit the new width (the window opens on another tab, so the first layout saw a stand-in
        viewport). Big graphs never fold, so nothing is recomputed for them."""
        if self.spec is None or len(self.lay.unit_node) > FOLD_MAX_UNITS:
            return
        lay = layout(self.spec, self.collapsed, self.view.viewport().width())
        if lay.pos.shape != self.lay.pos.shape or not np.array_equal(lay.pos, self.lay.pos):
            self.lay = lay
            self._redraw_all()

    def _redraw_all(self) -> None:
        self.scene.build(self.program.nodes, self.spec, self.lay, self.titles)
        self.scene.mark_inspected(self.inspector.node_id)
        self._refresh_all()
        self._update_strip()

    def _refresh_all(self) -> None:
        """Every item from the stepper's state (after a rebuild, a reset or a run to the end)."""
        self.current = self.stepper.history[-1].node_id if self.stepper.history else None
        self._refresh_units(range(len(self.scene.units)))
        self._light_last_step()
        self._update_labels()

    def _light_last_step(self) -> None:
        if not self.stepper.history:
            self.scene.light_edges([], FORWARD)
            return
        info = self.stepper.history[-1]
        if info.phase == "forward":
            ins = self.program.nodes[info.node_id].inputs
            self.scene.light_edges([(i, info.node_id) for i in ins], FORWARD)
        else:
            self.scene.light_edges([(i, info.node_id) for i in info.grads], GRADIENT)

    # -- groups, inspector, checks -----------------------------------------------------------------------------
    def toggle_group(self, key: str) -> None:
        """Expand or collapse one group and lay out again (milliseconds even for 1,000 nodes)."""
        self.collapsed ^= {key}
        self.lay = layout(self.spec, self.collapsed, self.view.viewport().width())
        self._redraw_all()
        members = np.flatnonzero(np.array(self.spec.groups) == key)
        if len(members):
            x, y = self.lay.pos[self.lay.unit_of[members]].mean(axis=0)
            self.view.centerOn(x, y)
        self.view.update_minimap(refit=True)

    def inspect(self, node_id: int) -> None:
        self.inspector.show_node(node_id)
        self.scene.mark_inspected(node_id)
        self.view.follow(self.scene.unit_item(node_id))   # inspected from code (a test, a script): bring it into view

    def fd_check(self, node_id: int) -> None:
        """Finite differences on a private copy of the node and its inputs, so stepping may go on meanwhile."""
        nodes = self.program.nodes
        node = nodes[node_id]
        if any(nodes[i].value is None for i in node.inputs):
            self.inspector.set_fd_result(node_id, None, "step forward until this node's inputs are computed")
            return
        mini = Tape()
        for k, i in enumerate(node.inputs):
            mini.nodes.append(replace(nodes[i], id=k, inputs=(), value=nodes[i].value.copy(), saved={}, grad=None))
        mini.nodes.append(replace(node, id=len(node.inputs), inputs=tuple(range(len(node.inputs))), value=None,
                                  saved={}, grad=None))
        target = len(node.inputs)
        self.jobs.run(lambda: fd_check_node(mini, target), lambda err: self.inspector.set_fd_result(node_id, err),
                     lambda msg: self.inspector.set_fd_result(node_id, None, msg))

    # -- RNN gradient strip ------------------------------------------------------------------------------------
    def _find_hidden_states(self) -> None:
        """Find the RNN's h_t nodes and set the strip's layer selector up for them."""
        self.h_by_layer = hidden_states_by_layer(self.program.nodes)
        self._h_nodes = {i for ids in self.h_by_layer.values() for i in ids}
        self.strip_box.layer.blockSignals(True)
        self.strip_box.layer.clear()
        self.strip_box.layer.addItems([f"layer {k}" for k in self.h_by_layer])
        self.strip_box.layer.setCurrentIndex(len(self.h_by_layer) - 1)
        self.strip_box.layer.setVisible(len(self.h_by_layer) > 1)
        self.strip_box.layer.blockSignals(False)
        self.strip_box.setVisible(bool(self.h_by_layer))
        if self.h_by_layer:
            self.strip_box.loss.set_positions(len(next(iter(self.h_by_layer.values()))))
            self._request_bptt()

    def strip_norms(self) -> np.ndarray:
        """‖∂J/∂h_t‖ of the tape's loss J for the chosen layer; 0 where the backward pass has not finished with h_t
        yet."""
        layers = list(self.h_by_layer)
        ids = self.h_by_layer[layers[max(0, self.strip_box.layer.currentIndex())]]
        return finished_grad_norms(self.stepper, ids)

    def _loss_choice_changed(self) -> None:
        self._request_bptt()
        self._update_strip()

    def _request_bptt(self) -> None:
        """One position's loss is not the tape's J: torch.autograd computes its ‖∂L/∂h_t‖ on a job."""
        loss_at = self.strip_box.loss.value()
        self._bptt_request += 1
        if loss_at == "mean" or self.tape_source is None or not self.h_by_layer:
            return
        from engine.inside import bptt_norms    # torch model code, only when needed
        model, tokenizer, text = self.tape_source
        request = self._bptt_request
        self.jobs.run(lambda: bptt_norms(model, tokenizer.encode(text), loss_at),
                      lambda b: self._bptt_done(request, b), lambda msg: self._bptt_done(request, None, msg))

    def _bptt_done(self, request: int, bptt, message: str = "") -> None:
        if request != self._bptt_request:
            return
        self.bptt = bptt
        if message:
            self.show_message(message)
        self._update_strip()

    def _update_strip(self) -> None:
        if not self.h_by_layer:
            return
        loss_at = self.strip_box.loss.value()
        layer = max(0, self.strip_box.layer.currentIndex())
        T = len(self.h_by_layer[list(self.h_by_layer)[layer]])
        if loss_at == "mean":
            norms = self.strip_norms()
            title = f"J = the tape's loss, the mean over all {T} positions"
            note = ("‖∂J/∂h_t‖ as the backward pass reaches each h_t. With the mean, every h_t also gets its own "
                    "position's direct term, so the bars stay level even when older gradients vanish.")
            waiting = ("No gradient has reached the hidden states yet: step the backward pass (or run to the end) "
                       "and a bar appears for each h_t.")
        else:
            b = self.bptt
            norms = b.norms[min(layer, len(b.norms) - 1)] if b is not None else np.zeros(T)
            title = f"{describe_loss(loss_at, T)} · torch.autograd"
            note = ("‖∂L/∂h_t‖ for one position's loss: it reaches earlier h_t only back through the recurrence, so "
                    "bars shrinking towards t = 1 mean vanishing gradients. The tape steps the mean J; choose it to "
                    "watch these bars fill in step by step.")
            waiting = "Computing ‖∂L/∂h_t‖ with torch.autograd…"
        self.strip_box.show_norms(norms, title, waiting, note)
