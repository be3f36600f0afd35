"""Side by side: up to six decoding strategies on one prompt and one seed, streaming together.

Each column has its own strategy and knobs; the prompt, seed, max tokens, stop strings and the KV cache switch are
shared. One worker thread runs all the columns' decoders in turn, a token of each (engine.decode_compare.interleave),
so they advance at the same pace, and at the end it scores every column's tokens under the model's own distribution
(the figures under each column). A kept column is left out of the next run, so its text stays to compare against.
The chart under the columns follows the newest token of the column last clicked (the first one to begin with)."""
from __future__ import annotations

import logging
import threading
import time

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot
from PySide6.QtWidgets import (QFrame, QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit, QPushButton, QScrollArea,
                               QSpinBox, QSplitter, QVBoxLayout, QWidget)


from engine.threads import inference_threads, torch_threads
from engine.decode_compare import MAX_COLUMNS, ColumnRecord, check_cache, column_report, interleave
from engine.errors import ConfigError, PlaygroundError

from app.common.workers import error_message, start_worker
from app.sample.compare_column import CompareColumn
from app.sample.decode_controls import CacheControls, StopField
from app.sample.dist_chart import DistChart
from app.sample.knobs import UsesModelSource, model_line

log = logging.getLogger(__name__)

EMIT_INTERVAL_S = 1 / 30
TOP_N = 20
DEFAULT_COLUMNS = (("greedy", {}), ("sample", {"temperature": 0.8, "top_p": 0.9}),
                   ("beam", {"beam_width": 4, "length_penalty": 1.0}))


class CompareWorker(QObject):
    """Runs the columns' decoders together on its own thread, then each column's figures (model calls)."""

    events = Signal(list)    # [(config index, DecodeEvent, seconds)], in order
    reports = Signal(list)   # one engine.decode_compare.column_report per config, at the end
    failed = Signal(str)
    finished = Signal()

    def __init__(self, handle, prompt: str, cfgs: list, stop_flag: threading.Event):
        super().__init__()
        self.handle, self.prompt, self.cfgs, self.stop_flag = handle, prompt, cfgs, stop_flag
        self.stream = interleave(handle.model, handle.tokenizer, prompt, cfgs, stop_flag)

    def stop(self) -> None:
        self.stop_flag.set()

    @Slot()
    def run(self) -> None:
        batch, last = [], time.monotonic()
        records = [ColumnRecord(c) for c in self.cfgs]
        try:
            with torch_threads(inference_threads(self.handle.model)):   # put back when the columns end
                for i, event, seconds in self.stream:
                    records[i].add(event, seconds)
                    batch.append((i, event, seconds))
                    now = time.monotonic()
                    if now - last >= EMIT_INTERVAL_S:
                        self.events.emit(batch)
                        batch, last = [], now
            if batch:
                self.events.emit(batch)
                batch = []
            m, tok = self.handle.model, self.handle.tokenizer
            self.reports.emit([column_report(m, tok, self.prompt, r) for r in records])
        except Exception as e:  # noqa: BLE001 — shown in the view, never raised into Qt's event loop
            if batch:
                self.events.emit(batch)
            self.failed.emit(error_message(e))
        finally:
            self.finished.emit()


class CompareView(UsesModelSource, QWidget):
    """`source` is an app.common.model_source.ModelSource (snapshot(), describe(), is_training(), changed)."""

    def __init__(self, source, parent: QWidget | None = None):
        super().__init__(parent)
        self.source = source
        self._thread: QThread | None = None
        self._worker: CompareWorker | None = None
        self._running: list[CompareColumn] = []   # the columns of the run, in the worker's config order
        self._focus: CompareColumn | None = None  # whose distribution the chart follows
        self._follow = True
        self._handle = None
        self._t0 = 0.0
        self._build()
        for strategy, values in DEFAULT_COLUMNS:
            self.add_column(strategy, values)
        self.source.changed.connect(self._on_source_changed)
        self._on_source_changed()

    def _build(self) -> None:
        self.model_label = QLabel()
        self.model_label.setWordWrap(True)
        self.model_label.setStyleSheet("color: #333;")
        self.prompt = QPlainTextEdit()
        self.prompt.setPlaceholderText("Prompt: every column continues this text")
        self.prompt.setFixedHeight(48)
        self.seed = QLineEdit("0")
        self.seed.setToolTip("one seed for every sampling column, so they differ only by their knobs; blank = random")
        self.seed.setFixedWidth(70)
        self.max_tokens = QSpinBox()
        self.max_tokens.setRange(1, 2000)
        self.max_tokens.setValue(80)
        self.stops = StopField()
        self.add_button = QPushButton("+ column")
        self.add_button.clicked.connect(lambda: self.add_column("sample"))
        self.run_button = QPushButton("Run all")
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(self.run)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        self.cache = CacheControls()
        self.cache.check_requested.connect(self._check_cache)
        row = QHBoxLayout()
        for label, w in (("seed", self.seed), ("max tokens", self.max_tokens), ("stop", self.stops)):
            row.addWidget(QLabel(label))
            row.addWidget(w, 1 if w is self.stops else 0)
        row.addWidget(self.add_button)
        row.addWidget(self.run_button)
        row.addWidget(self.stop_button)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.strip = QWidget()
        self.columns_layout = QHBoxLayout(self.strip)
        self.columns_layout.setContentsMargins(0, 0, 0, 0)
        # six columns at their minimum width (180 px) need more than a 1280-px window has beside the training
        # panel: they scroll sideways instead of widening the window. Only sideways: the strip always takes the
        # view's height, so the texts stay above the fold
        self.strip_scroll = QScrollArea()
        self.strip_scroll.setWidget(self.strip)
        self.strip_scroll.setWidgetResizable(True)
        self.strip_scroll.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.strip_scroll.setFrameShape(QFrame.NoFrame)
        self.chart = DistChart()
        self.chart.clear_chart("Run to see each new token's distribution; click a token in any column for its own.")
        split = QSplitter(Qt.Vertical)
        split.addWidget(self.strip_scroll)
        split.addWidget(self.chart)
        split.setSizes([620, 240])
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        top = QHBoxLayout()
        left = QVBoxLayout()
        left.addWidget(self.model_label)
        left.addWidget(self.prompt)
        left.addLayout(row)
        top.addLayout(left, 1)
        self.cache.setMaximumWidth(280)   # shrinks to its minimum first on a small screen
        top.addWidget(self.cache)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.message)
        layout.addWidget(split, 1)

    # -- columns -----------------------------------------------------------------------------------------------
    @property
    def columns(self) -> list[CompareColumn]:
        return [self.columns_layout.itemAt(i).widget() for i in range(self.columns_layout.count())]

    def add_column(self, strategy: str = "sample", values: dict | None = None) -> CompareColumn | None:
        if len(self.columns) >= MAX_COLUMNS or self.running:
            return None
        col = CompareColumn(strategy, values)
        col.remove_requested.connect(self.remove_column)
        col.token_clicked.connect(self._on_token_clicked)
        self.columns_layout.addWidget(col, 1)
        self._update_buttons()
        return col

    def remove_column(self, col: CompareColumn) -> None:
        if self.running or len(self.columns) <= 1:
            return
        self.columns_layout.removeWidget(col)
        col.deleteLater()
        if self._focus is col:
            self._focus = None
        self._update_buttons()

    def _update_buttons(self) -> None:
        n = len(self.columns)
        self.add_button.setEnabled(n < MAX_COLUMNS and not self.running)
        self.add_button.setToolTip(f"{n} of at most {MAX_COLUMNS} columns")
        for c in self.columns:
            c.remove.setEnabled(n > 1 and not self.running)

    # -- running -------------------------------------------------------------------------------------------------
    def _seed(self) -> int | None:
        text = self.seed.text().strip()
        if not text or text.lower() == "random":
            return None
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"seed must be a whole number, or blank / 'random', not {text!r}") from None

    def run(self) -> None:
        if self.running:
            return
        todo = [c for c in self.columns if not c.kept]
        try:
            if not todo:
                raise ConfigError("every column is kept: untick 'keep' on the ones to run again")
            handle = self._model()
            if handle is None:
                raise PlaygroundError("no model yet: start a training run or load a checkpoint")
            shared = dict(max_new_tokens=self.max_tokens.value(), seed=self._seed(), stop=self.stops.stops(),
                          top_n=TOP_N, use_cache=self.cache.use_cache)
            cfgs = [c.config(**shared) for c in todo]
            prompt = self.prompt.toPlainText()
            worker = CompareWorker(handle, prompt, cfgs, threading.Event())   # checks every column's input
        except Exception as e:  # noqa: BLE001 — a user mistake or a failed snapshot: say so in the view
            if not isinstance(e, PlaygroundError):
                log.exception("could not start the side-by-side run")
            for c in todo:     # what they show belongs to an earlier prompt or setting, not to the one that failed
                c.clear()
            self.chart.clear_chart("Run to see each new token's distribution; click a token in any column for its "
                                   "own.")
            self.show_message(error_message(e), error=True)
            return
        seed = shared["seed"]
        ran_with = f"prompt {prompt[-20:]!r}, seed {seed if seed is not None else 'random'}"
        for c, cfg in zip(todo, cfgs):
            c.start(handle.tokenizer, prompt, cfg, ran_with)
        for c in self.columns:
            if c.kept:
                c.show_kept_note(ran_with)
        self._running, self._handle_run, self._prompt_run = todo, handle, prompt
        self._output_model = self.source.describe()   # what the output on screen comes from
        self.model_label.setText(model_line(self._output_model, self._output_model))
        self._focus = self._focus if self._focus in todo else todo[0]
        self._follow = True
        self.chart.clear_chart("The distribution of each new token of the highlighted column shows here.")
        self.show_message(f"running {len(todo)} column{'s' if len(todo) > 1 else ''} together…")
        self._worker = worker
        worker.events.connect(self._on_events)
        worker.reports.connect(self._on_reports)
        worker.failed.connect(self._on_failed)
        worker.finished.connect(self._on_finished)
        self._t0 = time.perf_counter()
        self._thread = start_worker(worker, "compare")
        self.run_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.cache.run_started()
        self._update_buttons()

    def stop(self) -> None:
        if self._worker is not None:
            self._worker.stop()

    def _on_events(self, batch: list) -> None:
        per: dict[int, list] = {}
        for i, event, seconds in batch:
            per.setdefault(i, []).append((event, seconds))
        for i, items in per.items():
            self._running[i].add_events(items)
        view = self._focus.view if self._focus is not None else None
        newest = min(len(view.events), view.token_count) - 1 if view is not None else -1   # beam: path may be shorter
        if self._follow and newest >= 0:
            self._show_step(self._focus, newest)

    def _on_reports(self, reports: list) -> None:
        steps = seconds = 0.0
        for col, report in zip(self._running, reports):
            col.finish(report)
            steps += len(col.record.events)
            seconds += col.record.seconds
        took = time.perf_counter() - self._t0
        speed = steps / seconds if seconds > 0 else 0.0
        self.cache.record_speed(self.cache.use_cache, speed)
        self.cache.check_button.setEnabled(any(c.record is not None and c.record.events for c in self.columns))
        self.show_message(f"{len(reports)} columns in {took:.2f} s ({speed:,.0f} tokens/s decoding, KV cache "
                           f"{'on' if self.cache.use_cache else 'off'}). Click any token for the distribution it "
                           f"came from; tick 'keep' to hold a column while you change the others.")

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        for col in self._running:
            if col.report is None:
                col.finish(None, "failed")
        self.show_message(message, error=True)

    def _on_finished(self) -> None:
        self._thread.wait()
        self._thread = self._worker = None
        self.run_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        self._update_buttons()

    def _on_token_clicked(self, col: CompareColumn, index: int) -> None:
        self._focus, self._follow = col, False
        self._show_step(col, index)

    def _show_step(self, col: CompareColumn, index: int) -> None:
        for c in self.columns:
            c.set_focused(c is col)
            if c is not col:
                c.view.select_token(None)
        col.view.select_token(index)
        event, chosen, note = col.view.step_event(index)
        strategy = "greedy" if col.record.cfg.greedy else col.record.cfg.strategy
        where = f"Column {self.columns.index(col) + 1} ({col.record.cfg.strategy}). "
        self.chart.show_event(event, col.view.tokenizer, strategy, chosen, note, prefix=where)

    def _check_cache(self) -> None:
        """Cached against uncached logits over every column's text, off the GUI thread."""
        handle, prompt = self._handle_run, self._prompt_run
        texts = [c.record.token_ids() for c in self._running if c.record is not None and c.record.events]
        if texts:
            self.cache.run_check(lambda: [check_cache(handle.model, handle.tokenizer, prompt, ids) for ids in texts])

    def shutdown(self) -> None:
        """Stop the run and wait for its thread (the main window's close reaches this through the Sample panel)."""
        self.stop_decoding()
