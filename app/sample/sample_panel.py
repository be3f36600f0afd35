"""The Sample tab: type a prompt, pick a decoding strategy and its knobs, and watch the text come out token by token.

Every generated token can be hovered (its probability and rank) and clicked (the distribution it was drawn from,
with what truncation cut away); beam search also draws its tree of kept and pruned hypotheses. Decoding runs on a
worker thread over a snapshot of the model's weights, so it works while training goes on and never blocks it."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from PySide6.QtCore import QEvent, QObject, Qt, QThread, Signal, Slot
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit,
                               QPlainTextEdit, QPushButton, QSlider, QSpinBox, QSplitter, QTabWidget, QVBoxLayout,
                               QWidget)

from engine.decode import DecodeConfig, generate, inference_threads
from engine.errors import ConfigError, PlaygroundError

from app.common.token_view import SampleView
from app.common.workers import error_message, start_worker
from app.sample.beam_tree import BeamTree, build_tree
from app.sample.dist_chart import DistChart, axis_label
from app.sample.ngram_explain import TITLE as EXPLAIN_TITLE, NGramExplainView

log = logging.getLogger(__name__)

EMIT_INTERVAL_S = 1 / 30  # a tiny model makes thousands of tokens a second; the GUI needs ~30 updates
TOP_N = 20                # candidates per step on the chart: enough to see what truncation cuts


class DecodeWorker(QObject):
    """Iterates one `generate` stream on its own thread; `stop()` (any thread) takes effect between tokens."""

    events = Signal(list)   # a batch of DecodeEvents, in order (the last batch ends with the done event)
    failed = Signal(str)
    finished = Signal()     # always last

    def __init__(self, stream, stop_flag: threading.Event, model=None):
        super().__init__()
        self.stream = stream           # made on the GUI thread, so bad input is reported before a thread starts
        self.stop_flag = stop_flag     # the one `generate` looks at between tokens
        self.model = model             # what the stream decodes from: its size picks the torch threads

    def stop(self) -> None:
        self.stop_flag.set()

    @Slot()
    def run(self) -> None:
        batch, last = [], time.monotonic()
        try:
            if self.model is not None:
                inference_threads(self.model)   # one thread for a small model (engine/decode.py says why)
            for event in self.stream:
                batch.append(event)
                now = time.monotonic()
                if event.done or now - last >= EMIT_INTERVAL_S:
                    self.events.emit(batch)
                    batch, last = [], now
        except Exception as e:  # noqa: BLE001 — a failure mid-stream must reach the panel, not kill the thread
            if batch:
                self.events.emit(batch)
            self.failed.emit(error_message(e))
        finally:
            self.finished.emit()


class SliderSpin(QWidget):
    """A slider for feel and a spin box for exact values, kept in sync (the slider moves in `step` increments)."""

    def __init__(self, lo: float, hi: float, step: float, value: float, decimals: int, special: str = ""):
        super().__init__()
        self.cast = int if decimals == 0 else float
        self.lo, self.step = lo, step
        self.slider = QSlider(Qt.Horizontal)
        self.slider.setRange(0, round((hi - lo) / step))
        self.spin = QSpinBox() if decimals == 0 else QDoubleSpinBox()
        if decimals:
            self.spin.setDecimals(decimals)
        self.spin.setRange(self.cast(lo), self.cast(hi))
        self.spin.setSingleStep(self.cast(step))
        self.spin.setSpecialValueText(special)  # shown at the minimum, e.g. top-k 0 = "off"
        self.spin.setFixedWidth(72)
        self.slider.valueChanged.connect(lambda i: self.spin.setValue(self.cast(round(self.lo + i * self.step, 6))))
        self.spin.valueChanged.connect(self._spin_moved)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.spin)
        self.setValue(value)

    def _spin_moved(self, v: float) -> None:
        self.slider.blockSignals(True)  # the spin box holds the exact value; the slider only follows it
        self.slider.setValue(round((v - self.lo) / self.step))
        self.slider.blockSignals(False)

    def value(self) -> float:
        return self.spin.value()

    def setValue(self, v: float) -> None:
        self.spin.setValue(self.cast(v))
        self._spin_moved(self.spin.value())


@dataclass(frozen=True)
class Knob:
    """One numeric setting: its DecodeConfig field, range, and which strategies it applies to (and why not)."""
    field: str
    label: str
    lo: float
    hi: float
    step: float
    default: float
    decimals: int
    applies: tuple[str, ...]
    help: str


TRUNCATION_OFF = {"greedy": "greedy always takes the most probable token; truncation does not apply",
                  "beam": "beam search ranks hypotheses by the model's own probabilities; truncation does not apply"}
WHY_NOT = {
    "temperature": {"greedy": "greedy always takes the most probable token; temperature never changes which one it is",
                    "beam": "beam search ranks hypotheses by the model's own probabilities; temperature does not apply"},
    "top_k": TRUNCATION_OFF, "top_p": TRUNCATION_OFF, "min_p": TRUNCATION_OFF,
    "beam_width": {s: "only beam search keeps several hypotheses" for s in ("greedy", "sample")},
    "length_penalty": {s: "only beam search compares finished hypotheses of different lengths"
                       for s in ("greedy", "sample")},
    "seed": {"greedy": "greedy is deterministic: there is no randomness to seed",
             "beam": "beam search is deterministic: there is no randomness to seed"},
}
KNOBS = (
    Knob("temperature", "temperature", 0.0, 3.0, 0.05, 1.0, 2, ("sample",),
         "divides the logits: below 1 sharpens the distribution, above 1 flattens it; 0 = greedy"),
    Knob("top_k", "top-k", 0, 200, 1, 0, 0, ("sample",), "keep only the k most probable tokens; 0 = off"),
    Knob("top_p", "top-p", 0.01, 1.0, 0.01, 1.0, 2, ("sample",),
         "keep the smallest set of most probable tokens holding this much probability (nucleus); 1 = off"),
    Knob("min_p", "min-p", 0.0, 1.0, 0.01, 0.0, 2, ("sample",),
         "drop tokens less probable than min-p × the most probable one; 0 = off"),
    Knob("repetition_penalty", "repetition penalty", 0.5, 3.0, 0.05, 1.0, 2, ("greedy", "sample", "beam"),
         "makes tokens already in the text less likely (CTRL: logits divided/multiplied by it); 1 = off"),
    Knob("beam_width", "beam width", 1, 16, 1, 4, 0, ("beam",), "hypotheses kept at every step"),
    Knob("length_penalty", "length penalty", -1.0, 3.0, 0.1, 1.0, 1, ("beam",),
         "finished hypotheses are ranked by log-prob / length^this; 0 = raw log-prob (favours short texts)"),
)
STRATEGY_HELP = {"greedy": "always take the most probable next token",
                 "sample": "draw the next token at random from the (tempered, truncated) distribution",
                 "beam": "keep the best few partial texts at every step; return the best finished one"}


class SamplePanel(QWidget):
    """See docs/ARCHITECTURE.md "App panels". `source` is an app.common.model_source.ModelSource (or anything with its
    interface: snapshot(), describe(), is_training(), changed)."""

    def __init__(self, source, parent: QWidget | None = None):
        super().__init__(parent)
        self.source = source
        self._handle = None          # cached snapshot (ModelHandle) until `changed`
        self._thread: QThread | None = None
        self._worker: DecodeWorker | None = None
        self._t0 = 0.0
        self._strategy_run = ""      # the strategy of the text on display (the combo box may have moved on)
        self._tree_at = self._tree_cost = 0.0  # when the beam tree was last drawn, and how long that took
        self._build()
        self.source.changed.connect(self._on_source_changed)
        self._on_strategy()
        self._on_source_changed()

    # -- layout ----------------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.model_label = QLabel()
        self.model_label.setWordWrap(True)
        self.model_label.setStyleSheet("color: #333;")
        self.strategy = QComboBox()
        for name in ("greedy", "sample", "beam"):
            self.strategy.addItem(name, name)
            self.strategy.setItemData(self.strategy.count() - 1, STRATEGY_HELP[name], Qt.ToolTipRole)
        self.strategy.setCurrentIndex(1)
        self.strategy.currentIndexChanged.connect(self._on_strategy)
        form = QFormLayout()
        form.addRow("strategy", self.strategy)
        self.knobs: dict[str, SliderSpin] = {}
        self._labels: dict[str, QLabel] = {}
        for k in KNOBS:
            w = SliderSpin(k.lo, k.hi, k.step, k.default, k.decimals, special="off" if k.field == "top_k" else "")
            self.knobs[k.field] = w
            self._labels[k.field] = QLabel(k.label)
            form.addRow(self._labels[k.field], w)
        self.max_tokens = QSpinBox()
        self.max_tokens.setRange(0, 5000)
        self.max_tokens.setValue(200)
        self.max_tokens.setToolTip("hard limit on the number of generated tokens")
        form.addRow("max new tokens", self.max_tokens)
        self.seed = QLineEdit()
        self.seed.setPlaceholderText("random")
        self.seed_help = "a whole number makes the sample repeatable; blank or 'random' draws fresh randomness"
        self._labels["seed"] = QLabel("seed")
        form.addRow(self._labels["seed"], self.seed)
        self.generate_button = QPushButton("Generate")
        self.generate_button.setDefault(True)
        self.generate_button.clicked.connect(self.generate)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_button)
        buttons.addWidget(self.stop_button)
        settings = QGroupBox("Decoding")
        col = QVBoxLayout(settings)
        col.addLayout(form)
        col.addLayout(buttons)
        how = QLabel("<b>How the next token is picked</b><br>the model's logits → repetition penalty → "
                     "temperature → top-k → top-p → min-p → renormalise → draw (sample) or take the most probable "
                     "(greedy).<br><br>Beam search instead keeps the <i>beam width</i> best partial texts at every "
                     "step, ranked by total log-probability, and returns the best finished one.<br><br>"
                     "Hover a generated token for its probability; click it for the distribution it came from.")
        how.setWordWrap(True)
        how.setStyleSheet("color: #444; margin-top: 12px;")
        col.addWidget(how)
        col.addStretch(1)
        settings.setMaximumWidth(360)   # narrower when the window is: its rows shrink to their minimum

        self.prompt = QPlainTextEdit()
        self.prompt.setPlaceholderText("Prompt: the text the model continues (Ctrl+Enter generates)")
        self.prompt.installEventFilter(self)
        self.prompt.setFixedHeight(64)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.view = SampleView()
        self.view.token_clicked.connect(self.show_step)
        self.chart = DistChart()
        self.tree = BeamTree()
        self.tabs = QTabWidget()
        self.tabs.addTab(self.chart, "Next-token distribution")
        self.tabs.addTab(self.tree, "Beam tree")
        self.explain = NGramExplainView()
        self.tabs.addTab(self.explain, EXPLAIN_TITLE)
        split = QSplitter(Qt.Vertical)
        split.addWidget(self.view)
        split.addWidget(self.tabs)
        split.setSizes([280, 420])  # proportions: the chart and the tree need more height than the text
        right = QVBoxLayout()
        right.addWidget(self.model_label)
        right.addWidget(self.prompt)
        right.addWidget(self.message)
        right.addWidget(split, 1)
        layout = QHBoxLayout(self)
        layout.addWidget(settings)
        layout.addLayout(right, 1)

    def eventFilter(self, obj, event) -> bool:
        """Ctrl+Enter in the prompt generates (plain Enter is a newline, which prompts often need)."""
        if (obj is self.prompt and event.type() == QEvent.KeyPress and event.modifiers() & Qt.ControlModifier
                and event.key() in (Qt.Key_Return, Qt.Key_Enter)):
            self.generate()
            return True
        return super().eventFilter(obj, event)

    # -- settings ----------------------------------------------------------------------------------------------
    @property
    def strategy_name(self) -> str:
        return self.strategy.currentData()

    def _on_strategy(self) -> None:
        """Disable what does not apply, with the reason as the tooltip (a greyed control with no reason is a puzzle)."""
        s = self.strategy_name
        self.strategy.setToolTip(STRATEGY_HELP[s])
        for k in KNOBS:
            reason = WHY_NOT.get(k.field, {}).get(s)
            on = s in k.applies
            tip = k.help if on else f"not used: {reason}"
            for w in (self.knobs[k.field], self._labels[k.field]):
                w.setEnabled(on)
                w.setToolTip(tip)
        seed_reason = WHY_NOT["seed"].get(s)
        for w in (self.seed, self._labels["seed"]):
            w.setEnabled(seed_reason is None)
            w.setToolTip(self.seed_help if seed_reason is None else f"not used: {seed_reason}")

    def decode_config(self) -> DecodeConfig:
        """The widgets as a DecodeConfig (ConfigError for a bad seed or max tokens, with a message to show)."""
        seed_text = self.seed.text().strip()
        seed = None
        if seed_text and seed_text.lower() != "random" and self.strategy_name == "sample":
            try:
                seed = int(seed_text)
            except ValueError:
                raise ConfigError(f"seed must be a whole number, or blank / 'random', not {seed_text!r}") from None
        if self.max_tokens.value() == 0:
            raise ConfigError("max new tokens is 0: set it to at least 1 to generate anything")
        values = {k.field: self.knobs[k.field].value() for k in KNOBS}
        for name in ("top_k", "beam_width"):
            values[name] = int(round(values[name]))
        return DecodeConfig(strategy=self.strategy_name, max_new_tokens=self.max_tokens.value(), seed=seed, top_n=TOP_N,
                            **values)

    # -- the model ---------------------------------------------------------------------------------------------
    def _on_source_changed(self) -> None:
        """Drop the cached snapshot (the next Generate takes a fresh one) and say which model that will be."""
        self._handle = None
        self.model_label.setText(f"Model: {self.source.describe()}")

    def _model(self):
        """A snapshot, fresh when training is going on (the weights move every step), else cached."""
        if self._handle is None or self.source.is_training():
            self._handle = self.source.snapshot()
        return self._handle

    # -- running -----------------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None

    def generate(self) -> None:
        if self.running:
            return
        try:
            handle = self._model()
            if handle is None:
                raise PlaygroundError("no model yet: start a training run (the panel on the left) or load a checkpoint")
            cfg = self.decode_config()
            prompt = self.prompt.toPlainText()
            stop_flag = threading.Event()
            stream = generate(handle.model, handle.tokenizer, prompt, cfg, stop_flag)
        except Exception as e:  # noqa: BLE001 — a user mistake or a failed snapshot: say so in the panel
            if not isinstance(e, PlaygroundError):
                log.exception("could not start decoding")
            self.show_message(error_message(e), error=True)
            return
        self.view.start(handle.tokenizer, prompt, cfg)
        self.explain.start(handle, prompt)
        self._strategy_run = "greedy" if cfg.greedy else cfg.strategy
        self.chart.clear_chart("Click a generated token to see the distribution it was drawn from.")
        if cfg.strategy == "beam":
            self.tree.show_message("beam search running…")
            self.tabs.setCurrentWidget(self.tree)
        else:
            self.tree.show_message("Run beam search to see the hypotheses it keeps and prunes at each step.")
            self.tabs.setCurrentWidget(self.chart)
        stale = " (a snapshot: training goes on)" if self.source.is_training() else ""
        self.show_message(f"generating with {cfg.strategy}{stale}…")
        self._worker = DecodeWorker(stream, stop_flag, handle.model)
        self._worker.events.connect(self._on_events)
        self._worker.failed.connect(self._on_failed)   # a bound slot: a lambda would run on the decode thread
        self._worker.finished.connect(self._on_finished)  # connected before the start: a short run can end at once
        self._t0 = time.perf_counter()
        self._thread = start_worker(self._worker, "decode")
        self.generate_button.setEnabled(False)
        self.stop_button.setEnabled(True)

    def stop(self) -> None:
        if self._worker is not None:
            self._worker.stop()

    def _on_events(self, events: list) -> None:
        self.view.add_events(events)
        done = events[-1] if events[-1].done else None
        if self.view.beam and (done or time.perf_counter() - self._tree_at > max(0.2, 4 * self._tree_cost)):
            self._draw_tree()
        if done is not None:
            took = time.perf_counter() - self._t0
            n = self.view.token_count
            self.show_message(f"{n} tokens in {took:.2f} s ({n / max(took, 1e-9):.0f} tokens/s); finished: "
                              f"{done.finish_reason.replace('_', ' ')}. Hover a token for its probability, click it "
                              f"for its distribution.")
            if self.view.token_count and self.view.selected is None:
                self.show_step(0, switch=not self.view.beam)  # beam search: the tree stays in front

    def _draw_tree(self) -> None:
        """The tree is redrawn whole (thousands of items for a wide, long search), so while decoding runs it is
        redrawn only every so often, never taking more than a fifth of the GUI thread's time."""
        t0 = time.perf_counter()
        self.tree.show_tree(build_tree(self.view.beam_steps, self.view.best_ids, self._node_label),
                            axis_label(self.view.prompt[-8:]) or "(empty)")
        self._tree_at = time.perf_counter()
        self._tree_cost = self._tree_at - t0

    def _node_label(self, token_id: int) -> str:
        return axis_label(self.view.tokenizer.token_str(token_id))

    def _on_finished(self) -> None:
        self._thread.wait()      # start_worker quits the thread as the worker finishes
        self._thread = self._worker = None
        self.generate_button.setEnabled(True)
        self.stop_button.setEnabled(False)

    def show_step(self, index: int, switch: bool = True) -> None:
        """Fill the chart with the distribution behind generated token `index` (and bring it to the front)."""
        self.view.select_token(index)
        event, chosen_id, note = self.view.step_event(index)
        self.chart.show_event(event, self.view.tokenizer, "beam" if self.view.beam else self._strategy_run,
                              chosen_id, note)
        self.explain.show_token(self.view, index)
        if switch and self.tabs.currentWidget() is not self.explain:
            self.tabs.setCurrentWidget(self.chart)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.show_message(message, error=True)

    def show_message(self, text: str, error: bool = False) -> None:
        self.message.setStyleSheet("color: #b00020; font-weight: bold;" if error else "color: #444;")
        self.message.setText(text)

    def shutdown(self) -> None:
        """Stop decoding and wait for the thread (the main window calls this on close)."""
        if self._worker is not None:
            self._worker.stop()
        if self._thread is not None:
            self._thread.wait()  # the worker ends after its current token; start_worker then quits the thread
        self.explain.shutdown()
