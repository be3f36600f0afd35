"""The Sample tab: type a prompt, pick a decoding strategy and its knobs, and watch the text come out token by token.

Every generated token can be hovered (its probability and rank) and clicked (the distribution it was drawn from,
with what truncation cut away); while it streams, the chart follows the newest token. Beam search also draws its tree
of kept and pruned hypotheses. Stop strings end a text (and let beam search's length penalty compare hypotheses of
different lengths); the KV cache switch shows the speed with and without it, and Check compares their logits.
Decoding runs on a worker thread over a snapshot of the model's weights, so it works while training goes on and never
blocks it. The "Side by side" page (app/sample/compare_view.py) runs up to six strategies together."""
from __future__ import annotations

import logging
import threading
import time

from PySide6.QtCore import QEvent, QObject, Qt, QThread, Signal, Slot
from PySide6.QtWidgets import (QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit,
                               QPlainTextEdit, QPushButton, QSpinBox, QSplitter, QTabWidget, QVBoxLayout,
                               QWidget)

from engine.decode import DecodeConfig, generate
from engine.threads import inference_threads, torch_threads
from engine.errors import ConfigError, PlaygroundError

from app.common.token_view import SampleView
from app.common.workers import error_message, start_worker
from app.sample.beam_tree import BeamTree, build_tree
from app.sample.compare_view import CompareView
from app.sample.decode_controls import CacheControls, StopField
from app.sample.dist_chart import DistChart, axis_label
from app.sample.knobs import KNOBS, STRATEGY_HELP, WHY_NOT, SliderSpin, UsesModelSource, model_line
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
            threads = inference_threads(self.model) if self.model is not None else None
            with torch_threads(threads):   # engine/threads.py: by the model's size and the idle cores, put back after
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


class SamplePanel(UsesModelSource, QWidget):
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
        self._follow = True          # the chart follows the stream until a token is clicked
        self._cfg: DecodeConfig | None = None  # the settings of the text on display
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
        self.stops = StopField()
        form.addRow("stop strings", self.stops)
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
        self.cache = CacheControls()
        self.cache.check_requested.connect(self._check_cache)
        col.addWidget(self.cache)
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
        self.view.token_clicked.connect(self._on_token_clicked)
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
        single = QWidget()
        layout = QHBoxLayout(single)
        layout.addWidget(settings)
        layout.addLayout(right, 1)
        self.compare = CompareView(self.source)   # the side-by-side view: its own prompt, columns and worker
        self.modes = QTabWidget()
        self.modes.addTab(single, "One strategy")
        self.modes.addTab(self.compare, "Side by side")
        self.modes.setTabToolTip(1, "up to six strategies on one prompt and seed, streaming together")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.modes)

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
                            stop=self.stops.stops(), use_cache=self.cache.use_cache, **values)

    # -- running -----------------------------------------------------------------------------------------------
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
            self._clear_output()   # what is on screen belongs to an earlier prompt, not to the one that failed
            self.show_message(error_message(e), error=True)
            return
        self._cfg, self._handle_run, self._follow = cfg, handle, True
        self._output_model = self.source.describe()   # what the output on screen comes from
        self.model_label.setText(model_line(self._output_model, self._output_model))
        self.cache.run_started()
        self.view.start(handle.tokenizer, prompt, cfg)
        self.explain.start(handle, prompt)
        self._strategy_run = "greedy" if cfg.greedy else cfg.strategy
        self.chart.clear_chart("The distribution of each new token shows here as it is generated.")
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
        newest = min(len(self.view.events), self.view.token_count) - 1   # beam: the text shown can be shorter
        if self._follow and newest >= 0:   # the bars follow the stream: the newest token's distribution
            self.show_step(newest, switch=False)
        if done is not None:
            took = time.perf_counter() - self._t0
            n = self.view.token_count
            speed = len(self.view.events) / max(took, 1e-9)
            self.cache.record_speed(self._cfg.use_cache, speed)
            self.cache.check_button.setEnabled(bool(self.view.events))
            self.show_message(f"{n} tokens in {took:.2f} s ({speed:.0f} tokens/s, KV cache "
                              f"{'on' if self._cfg.use_cache else 'off'}); finished: "
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

    def _clear_output(self) -> None:
        self.view.start(None, "", DecodeConfig())
        self.chart.clear_chart("The distribution of each new token shows here as it is generated.")
        self.tree.show_message("Run beam search to see the hypotheses it keeps and prunes at each step.")
        self.cache.run_started()

    def _on_token_clicked(self, index: int) -> None:
        self._follow = False     # the user chose a step: the chart stays on it while the stream goes on
        self.show_step(index)

    def _check_cache(self) -> None:
        """Cached against uncached logits over the text on display (off the GUI thread)."""
        if self._cfg is None or not self.view.events:
            return
        from engine.decode_compare import check_cache
        ids = list(self.view.best_ids or ()) if self.view.beam else [int(e.token_id) for e in self.view.events]
        handle, prompt = self._handle_run, self.view.prompt
        self.cache.run_check(lambda: check_cache(handle.model, handle.tokenizer, prompt, ids))

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

    def shutdown(self) -> None:
        """Stop decoding and wait for the thread (the main window calls this on close)."""
        self.stop_decoding()
        self.compare.shutdown()
        self.explain.shutdown()
