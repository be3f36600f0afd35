"""The main window: the training panel on the left, tabs Loss / Graph / Sample / Tokens / Inside on the right,
a menu bar (window/menus.py), a notice across the top when a run ends (window/run_notice.py), a status bar with the
device, run state, step, tokens/s and ETA. It owns the run's worker thread and the ModelSource the tabs read, and
remembers geometry, corpora and the last settings in QSettings. Its commands live in mixins under window/: the
run's (Start, Pause, Stop and the worker's signals) in run_control.py, saving and loading checkpoints in
checkpoint_actions.py, following another process's run in run_follow.py, the model menu's in model_actions.py."""
from __future__ import annotations

import json
import logging
from html import escape
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, Qt, QThread, QTimer, Signal, Slot
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QGuiApplication
from PySide6.QtWidgets import (QLabel, QMainWindow, QMessageBox, QSplitter,
                               QTabWidget, QVBoxLayout, QWidget)

from engine import api
from engine.corpus import BUILTIN_PREFIX
from engine.device import resolve_device
from engine.errors import PlaygroundError

from app.common.jobs import JobRunner
from app.common.model_source import ModelSource
from app.common.workers import TrainWorker, run_device_label
from app.graph.graph_view import GraphPanel
from app.inside.inside_panel import InsidePanel
from app.sample.sample_panel import SamplePanel
from app.tokens.tokens_panel import TokensPanel
from app.training.loss_plot import LossPlot
from app.training.run_keeper import RunKeeper
from app.training.train_panel import WARN_COLOR, TrainPanel
from app.window.checkpoint_actions import CheckpointActions
from app.window.gc_freeze import freeze_startup_objects
from app.window.menus import build_menus
from app.window.model_actions import ModelActions
from app.window.run_control import RunControl
from app.window.run_follow import RunFollowing
from app.window.run_notice import RunNotice, first_geometry

log = logging.getLogger(__name__)

FIRST_CORPUS = BUILTIN_PREFIX + "python-docs"
CPU_PRESET = "tiny-cpu-transformer"
GPU_PRESETS = ("fast-gpu-char", "nanogpt-char")
STATE_TEXT = {"idle": "idle", "preparing": "preparing (tokenizing, building the model)…", "running": "training",
              "paused": "paused", "stopping": "stopping…", "validating": "stopping… (final validation)",
              "done": "finished", "stopped": "stopped",
              "error": "error", "loaded": "checkpoint loaded"}


class MainWindow(RunControl, CheckpointActions, RunFollowing, ModelActions, QMainWindow):
    load_finished = Signal(bool)   # a load_checkpoint() ended: True when the checkpoint is now shown
    exported = Signal(str)         # an export_checkpoint() ended: the script's path, or "" when it failed
    def __init__(self, settings: QSettings | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.settings = settings if settings is not None else QSettings()
        self.setWindowTitle("LM Playground")
        self.setAcceptDrops(True)
        self.source = ModelSource(self)
        self.jobs = JobRunner(self)       # saving and reading checkpoints in the background
        self._saving = self._close_when_saved = False
        self._loading: str | None = None  # the checkpoint being read on a worker thread
        self._scrub_request = 0           # the newest step chosen on the loss curve, read on a worker thread
        self.run: api.Run | None = None
        self.last_report = None       # the newest StepReport the worker delivered
        self.worker: TrainWorker | None = None
        self.thread: QThread | None = None
        self._retired: list[TrainWorker] = []   # stopped by shutdown_run, their last queued signals not yet in
        self.state = "idle"
        self.unsaved = False          # the current run has trained steps not written to a checkpoint
        self._stop_requested = False
        self._saved_step: int | None = None   # the step the run was last saved at
        self.saved: tuple | None = None   # (folder, meta, run) of the run's latest save (checkpoint_in_use)
        self._plotted: tuple[dict, str] | None = None   # the spec (and a note) of the run on the loss plot
        self.loaded: tuple[str, dict] | None = None   # (folder, meta) of the checkpoint loaded since the last run
        self.past: api.PastModels | None = None       # the loaded checkpoint's kept past models (scrubbing)
        self._notes = {"error": "", "warning": "", "about": "", "note": "", "eval": ""}   # the run message label
        self.reset_settings: list[str] = []   # saved settings that failed validation at start, "key: why"
        self.keeper = RunKeeper(self)      # run folders: autosaves, snapshots, crash recovery
        self.keeper.failed.connect(lambda why: self.statusBar().showMessage(why, 30000))

        self.panel = TrainPanel()
        self.loss_plot = LossPlot()
        self.loss_plot.remember_in(self.settings)
        self.loss_plot.step_chosen.connect(self._on_step_chosen)
        self.loss_plot.samples_over_time_clicked.connect(self.show_samples_over_time)
        self.graph_panel = GraphPanel(self.source, self)
        self.sample_panel = SamplePanel(self.source, self)
        self.tokens_panel = TokensPanel(self.source, self.panel)
        self.inside_panel = InsidePanel(self.source, self)
        self.tabs = QTabWidget()
        for widget, name in ((self.loss_plot, "Loss"), (self.graph_panel, "Graph"), (self.sample_panel, "Sample"),
                             (self.tokens_panel, "Tokens"), (self.inside_panel, "Inside")):
            self.tabs.addTab(widget, name)
        self.splitter = QSplitter(Qt.Horizontal)
        self.splitter.addWidget(self.panel)
        self.splitter.addWidget(self.tabs)
        self.splitter.setStretchFactor(1, 1)
        self.notice = RunNotice()
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.notice)
        layout.addWidget(self.splitter, 1)
        self.setCentralWidget(central)

        self.status_device, self.status_state, self.status_step, self.status_speed, self.status_eta = (
            QLabel() for _ in range(5))   # the status bar's fields, left to right
        for w in (self.status_device, self.status_state, self.status_step, self.status_speed, self.status_eta):
            w.setStyleSheet("padding: 0 8px; border-left: 1px solid palette(mid);")
            self.statusBar().addPermanentWidget(w)
        self.status_device.setToolTip("The device a run uses with the form's device setting. On the CPU a run "
                                      "trains with one thread, leaving the other cores to the window.")

        p = self.panel
        p.start_clicked.connect(self.start)
        p.pause_clicked.connect(self.pause)
        p.resume_clicked.connect(self.resume)
        p.stop_clicked.connect(self.stop)
        p.save_clicked.connect(self.save_in_background)
        p.load_clicked.connect(self.load_in_background)
        p.finetune_clicked.connect(self.finetune_checkpoint)
        p.export_clicked.connect(self.export_checkpoint)
        p.corpus_box.loaded.connect(self._on_corpus_loaded)
        p.corpus_box.failed.connect(self._on_corpus_failed)
        p.device.currentTextChanged.connect(self._show_device)
        self.menu_actions = build_menus(self)   # by name; not `actions`, which is QWidget.actions()
        self._restore()
        self._show_device()
        QTimer.singleShot(0, self.offer_recovery)   # once the window is up: a run a crash left behind
        self._set_state("idle")

    def _restore(self) -> None:
        s = self.settings
        device = resolve_device("auto")
        reset: list[str] = []   # saved entries that failed validation, each reset on its own
        geometry = s.value("window/geometry")
        if geometry is None or not self._restore_bytes("window/geometry", geometry, self.restoreGeometry, reset):
            screen = self.screen() or QGuiApplication.primaryScreen()
            self.setGeometry(first_geometry(screen.availableGeometry(), self.minimumSizeHint()))
        splitter = s.value("window/splitter")
        if splitter is None or not self._restore_bytes("window/splitter", splitter, self.splitter.restoreState,
                                                       reset):
            self.splitter.setSizes([380, self.width() - 380])   # the panel near its minimum: the tabs need the room
        recent = _as_list(s.value("corpus/recent", []))
        if recent is None:
            reset.append("corpus/recent: not a list of corpora")
            s.remove("corpus/recent")
        self.panel.corpus_box.set_recent(recent or [])
        last = s.value("corpus/last", FIRST_CORPUS)
        if not isinstance(last, str):
            reset.append(f"corpus/last: {last!r} is not a corpus path")
            s.remove("corpus/last")
            last = FIRST_CORPUS
        self.panel.corpus_box.load(last or FIRST_CORPUS, fallback=FIRST_CORPUS,
                                   on_bad_utf8=s.value("corpus/on_bad_utf8", "error"))
        saved = s.value("settings/last")
        applied = False
        if saved:
            try:
                values = json.loads(saved) if isinstance(saved, str) else saved
                bad = self.panel.apply_settings(values)
                applied = isinstance(values, dict)
            except (ValueError, TypeError, RecursionError, PlaygroundError) as e:
                bad = [f"not readable ({e})"]
            if bad:
                reset.extend(f"settings/last {b}" for b in bad)
                s.setValue("settings/last", json.dumps(self.panel.settings()))   # the valid rest is kept
        if not applied:
            self._choose_first_preset(device.type)
        if reset:
            self.reset_settings = reset
            message = "Saved settings reset to defaults: " + "; ".join(reset)
            log.warning("%s", message)
            self._set_notes(note=message)
            self.statusBar().showMessage(message, 30000)

    def _restore_bytes(self, key: str, value, restore, reset: list[str]) -> bool:
        """Apply a saved geometry/state blob; a value of the wrong type or one Qt refuses is removed and noted."""
        if isinstance(value, (bytes, bytearray, QByteArray)):
            try:
                if restore(value):
                    return True
            except (TypeError, ValueError):
                pass
        reset.append(f"{key}: not a saved window state")
        self.settings.remove(key)
        return False

    @Slot()
    def _show_device(self, *_) -> None:
        """The device a run would use with the form's choice; a run's own label stays until the choice changes."""
        if self.thread is None:
            self.status_device.setText(f"device: {run_device_label(self.panel.device.currentText())}")

    def _choose_first_preset(self, device_type: str) -> None:
        """On a GPU the fast char preset; on the CPU the tiny transformer, which trains in seconds."""
        wanted = GPU_PRESETS if device_type == "cuda" else (CPU_PRESET,)
        for name in wanted:
            for family in ("transformer", "lstm", "gru", "rnn"):
                if name in api.list_presets(family):
                    self.panel.family.setCurrentText(family)
                    self.panel.preset.setCurrentText(name)
                    self.panel.check()
                    return
        self.panel.check()

    def _remember_corpora(self) -> None:
        if self.panel.corpus_box.spec():   # closed before the first corpus loaded: keep the stored one
            self.settings.setValue("corpus/last", self.panel.corpus_box.spec())
        self.settings.setValue("corpus/recent", self.panel.corpus_box.recent())
        self.settings.setValue("corpus/on_bad_utf8", self.panel.corpus_box.on_bad_utf8())

    @Slot(object)
    def _on_corpus_loaded(self, corpus) -> None:
        self._remember_corpora()
        if self.loaded is not None and same_corpus(self.loaded[1].get("spec", {}).get("corpus"), corpus.source):
            # the loaded checkpoint's own corpus arrived: its validation text replaces the stand-in
            self.source.set_validation_text(self.panel.corpus_box.validation_text())   # a scrubbed step stays chosen

    @Slot(str, str)
    def _on_corpus_failed(self, spec: str, _message: str) -> None:
        if self.loaded is not None and same_corpus(self.loaded[1].get("spec", {}).get("corpus"), spec):
            self._set_notes(note=f"its corpus {spec} could not be loaded; validation text is from the current "
                                 f"corpus")

    def save_settings(self) -> None:
        s = self.settings
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/splitter", self.splitter.saveState())
        self._remember_corpora()
        s.setValue("settings/last", json.dumps(self.panel.settings()))
        s.sync()

    # -- run state (the run's commands and the worker's slots: window/run_control.py) ---------------------
    def _set_notes(self, **lines: str) -> None:
        """The run message label holds what the run is (about), the engine's latest remark (note: device, paused,
        finished) and the latest evaluation (eval), one line each; long ones wrap instead of widening the panel."""
        self._notes.update(lines)
        colors = {"error": "#b00020", "warning": WARN_COLOR}
        self.panel.message.setText("<br>".join(f"<span style='color:{colors[key]}'>{escape(t)}</span>"
                                               if key in colors else escape(t)
                                               for key, t in self._notes.items() if t))

    def _set_state(self, state: str) -> None:
        self.state = state
        self.status_state.setText(STATE_TEXT[state])
        self.panel.set_state(state, can_save=self.run is not None and not self._saving,
                             can_continue=self.loaded is not None and self.loaded[1].get("family") != "ngram"
                             and "pretrained" not in self.loaded[1],   # a model trained elsewhere has no run to resume
                             has_checkpoint=self.checkpoint_in_use() is not None)
        if self._loading:
            self.panel.load_button.setEnabled(False)   # one checkpoint at a time
        if hasattr(self, "menu_actions"):
            self.menu_actions["open_run"].setEnabled(not self.panel._running)   # not while this window trains
        if state == "preparing":
            self.panel.progress.setValue(0)
            self.panel.progress.setFormat("preparing: tokenizing the corpus, building the model…")
        if state == "paused":
            self._show_paused()
        if state in ("stopping", "validating", "done", "stopped", "error"):
            self.status_eta.setText("ETA —")
        if state in ("stopping", "validating"):
            self.panel.progress.setFormat(self.panel.progress.format().split(" · ")[0] + f" · {STATE_TEXT[state]}")
        if state in ("done", "stopped"):
            # the steps alone, then how it ended: no ETA, no "stopping…" left from the moment before
            self.panel.progress.setFormat(self.panel.progress.format().split(" · ")[0] + f" · {state}")
        if self.run is not None:
            self.source.set_training(state == "running")

    def _show_paused(self) -> None:
        """No ETA while paused: it would count down a run that is not moving."""
        self.status_eta.setText("ETA — (paused)")
        self.panel.progress.setFormat(self.panel.progress.format().split(" · ")[0] + " · paused")

    # -- drag and drop ---------------------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if not paths:
            return
        if self.panel._running:   # the form is locked during a run; a drop must not vanish without a word
            self.statusBar().showMessage(f"{Path(paths[0]).name} was not loaded: the corpus cannot change during a "
                                         f"run. Stop the run, then drop it again.", 15000)
            event.ignore()
            return
        self.panel.corpus_box.load(paths[0])
        event.acceptProposedAction()
        if len(paths) > 1:
            self.statusBar().showMessage(f"loading {Path(paths[0]).name}: one corpus at a time, the other "
                                         f"{len(paths) - 1} dropped item(s) were left out (a folder loads all its "
                                         f"files)", 15000)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        freeze_startup_objects()   # once per process: full collections stop walking 220,000+ startup objects

    # -- closing ---------------------------------------------------------------------------------------------
    def ask_save_on_close(self) -> QMessageBox.StandardButton:
        """Save, Discard or Cancel. Tests replace this method to answer without a dialog."""
        return QMessageBox.question(self, "Save the model?",
                                    "This run has not been saved. Save a checkpoint before closing?",
                                    QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel, QMessageBox.Save)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Unsaved work asks first. Discard stops the run at once (a final validation is skipped); Save writes the
        checkpoint in the background, the window responsive meanwhile, and closes when it is written."""
        if self._saving:   # a checkpoint is being written: close once it is, not halfway through
            event.ignore()
            self._close_when_saved = True
            self.statusBar().showMessage("closing once the checkpoint is written…")
            return
        if self.thread is not None or (self.run is not None and self.unsaved):
            answer = self.ask_save_on_close()
            if answer == QMessageBox.Cancel:
                event.ignore()
                return
            self.shutdown_run()
            if answer == QMessageBox.Save:
                event.ignore()   # closed again once saved; a cancelled dialog or a failed save keeps the window
                self.save_in_background(then=self.close)
                return
        self.stop_following()   # a followed run's poll must not start a read after the jobs are waited for
        self.sample_panel.shutdown()
        self.graph_panel.shutdown()
        self.tokens_panel.shutdown()
        self.inside_panel.shutdown()
        self.panel.corpus_box.shutdown()
        self.jobs.wait()   # a checkpoint being written or read: its thread must end before the window goes
        self.keeper.finish_quietly()   # closed on purpose: the run's folder is not offered for recovery
        self.save_settings()
        event.accept()


def _as_list(value) -> list[str] | None:
    """QSettings hands back a str for a one-element list in INI files, and None for an empty one. None when the
    value is not a list of strings (a damaged settings file)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def same_corpus(a, b) -> bool:
    """Whether two corpus specs name the same corpus: a checkpoint saved before runs kept absolute paths
    (engine.api.absolute_paths) records it as typed (relative, say "../shared/corpora/x.txt"), the loaded corpus
    reports it absolute; built-in names compare as text."""
    if not isinstance(a, str) or not isinstance(b, str):
        return False
    if a == b:
        return True
    if a.startswith("builtin:") or b.startswith("builtin:"):
        return False
    try:
        return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()
    except (OSError, RuntimeError, ValueError):
        return False
