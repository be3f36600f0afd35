"""The main window: the training panel on the left, tabs Loss / Graph / Sample / Tokens / Inside on the right,
a menu bar (window/menus.py), a notice across the top when a run ends (window/run_notice.py), a status bar with the
device, run state, step, tokens/s and ETA. It owns the run's worker thread and the ModelSource the tabs read, and
remembers geometry, corpora and the last settings in QSettings. Saving and loading checkpoints are in
window/checkpoint_actions.py."""
from __future__ import annotations

import json
import logging
from dataclasses import asdict
from html import escape
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, Qt, QThread, QTimer, Signal, Slot
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QGuiApplication
from PySide6.QtWidgets import (QApplication, QLabel, QMainWindow, QMessageBox, QSplitter,
                               QTabWidget, QVBoxLayout, QWidget)

from engine import api
from engine.corpus import BUILTIN_PREFIX
from engine.device import resolve_device
from engine.errors import PlaygroundError

from app.common.jobs import JobRunner
from app.common.model_source import ModelSource
from app.common.workers import TrainWorker, error_message, run_device_label, start_worker
from app.graph.graph_view import GraphPanel
from app.inside.inside_panel import InsidePanel
from app.sample.sample_panel import SamplePanel
from app.tokens.tokens_panel import TokensPanel
from app.training.loss_plot import LossPlot
from app.training.plot_axes import chars_per_token
from app.training.run_keeper import RunKeeper
from app.training.train_panel import WARN_COLOR, TrainPanel, format_duration
from app.window.checkpoint_actions import CheckpointActions
from app.window.gc_freeze import freeze_startup_objects
from app.window.menus import build_menus
from app.window.model_actions import ModelActions
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


class MainWindow(CheckpointActions, RunFollowing, ModelActions, QMainWindow):
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

    # -- run control -----------------------------------------------------------------------------------------
    @Slot()
    def start(self) -> None:
        box = self.panel.corpus_box
        if self.panel.check() or self.thread is not None or box.is_loading() or box.awaiting_prepare():
            return
        self.save_settings()
        self._launch(TrainWorker(self.panel.spec()))

    def resume_checkpoint(self) -> bool:
        """Go on training the loaded checkpoint (weights, optimizer, data position and RNG as saved) up to the
        form's max_steps, on the form's device, with the form's training settings (lr, batch_size, ...): the GUI's
        side of the CLI's --resume. Changed model settings, corpus or tokenizer are refused with the reason, and
        the checkpoint stays loaded."""
        if self.loaded is None or self.thread is not None:
            return False
        path, _ = self.loaded
        form = self.panel.spec()
        expect = {"family": form.family, "tokenizer": form.tokenizer, "corpus": form.corpus}
        try:
            spec = api.resume_spec(path, max_steps=form.max_steps, device=form.device, overrides=form.overrides,
                                   expect=expect)
        except (PlaygroundError, OSError) as e:
            why = error_message(e)   # a changed model or data can only be a new run; a too-low max_steps, raised
            self._set_notes(note=f"Cannot resume: {why}" + (". Start trains a new model with these settings."
                                                             if why.startswith("cannot resume with") else ""))
            return False
        self._launch(TrainWorker(spec, start_run=lambda s: api.resume_run(
            path, max_steps=s.max_steps, device=s.device, overrides=form.overrides, expect=expect)),
            continues_plot=True)
        return True

    def _launch(self, worker: TrainWorker, continues_plot: bool = False) -> None:
        """continues_plot: the run resumes the loaded checkpoint, whose history the plot shows; it carries on."""
        self.stop_following()   # a run of this window's own replaces a followed one
        if continues_plot:
            self._plotted = (asdict(worker.spec), (self._plotted[1] if self._plotted else "checkpoint") + ", resumed")
        else:
            self._new_plot(asdict(worker.spec))
        self.panel.corpus_box.clear_error()   # an old corpus error says nothing about this run
        self.notice.clear()                   # nor how the last run ended
        self.statusBar().clearMessage()       # nor does an earlier run's error
        self.run, self.last_report, self.unsaved, self._stop_requested = None, None, False, False
        self.loaded, self._saved_step, self.past = None, None, None
        self._set_notes(error="", warning="", about="", note="", eval="")
        self.worker = worker
        worker.snapshot_folder = self.keeper.begin(worker.spec.family)
        self.worker.prepared.connect(self._on_prepared, Qt.QueuedConnection)
        self.worker.reports.connect(self._on_reports, Qt.QueuedConnection)
        self.worker.failed.connect(self._on_failed, Qt.QueuedConnection)
        self.worker.evaluating.connect(self._on_evaluating, Qt.QueuedConnection)
        self.worker.finished.connect(self._on_finished, Qt.QueuedConnection)
        self._set_state("preparing")
        self.thread = start_worker(self.worker, "train")

    def _new_plot(self, spec: dict, note: str = "") -> None:
        """The loss plot starts afresh for the next run or checkpoint (`spec`: its RunSpec as a dict); the run it
        showed stays on it as an earlier run to compare against."""
        if self._plotted is not None:
            self.loss_plot.keep_as_earlier_run(*self._plotted)
        self.loss_plot.clear()
        self._plotted = (spec, note)

    @Slot()
    def pause(self) -> None:
        r = self.last_report
        if r is not None and r.step >= r.max_steps:
            return   # the last step is done: the run is only finishing (a final evaluation), nothing to pause
        if self.worker is not None and self.state == "running":
            self.worker.pause()
            self._set_state("paused")   # the run pauses after its current step

    @Slot()
    def resume(self) -> None:
        if self.state == "loaded":
            self.resume_checkpoint()
        elif self.worker is not None and self.state == "paused":
            self.worker.resume()
            self._set_notes(note="")   # "paused at step N" is over
            self._set_state("running")

    @Slot()
    def stop(self) -> None:
        """Stop ends the run after its current step; pressed again during the final validation, it skips it."""
        if self.worker is not None and self.state in ("preparing", "running", "paused"):
            self._stop_requested = True
            self.worker.stop()
            self._set_state("stopping")
        elif self.worker is not None and self.state == "validating":
            self.worker.skip_evaluation()

    def _from_old_worker(self) -> bool:
        """Whether the signal being handled comes from a training worker that is no longer this window's.
        shutdown_run ends a run without the event loop, so that worker's last reports and its finished signal are
        still queued when the next run starts; they must not reach it (the old finished would make the GUI thread
        wait for the new run's thread to end). Such a worker is kept in _retired until its finished signal arrives:
        a deleted sender reads as None. A slot called directly is current whatever sender() says then (None, or
        the menu action whose close() led here)."""
        sender = self.sender()
        return isinstance(sender, TrainWorker) and sender is not self.worker

    @Slot()
    def _on_evaluating(self) -> None:
        """The run has ended (it can be saved now); its final validation pass runs on the worker thread."""
        if self._from_old_worker():
            return
        if self.state == "stopping":
            self._set_state("validating")

    @Slot(object)
    def _on_prepared(self, run: api.Run) -> None:
        if self._from_old_worker():
            return
        self.run = run
        self.source.set_run(run)
        self.loss_plot.set_train_chars_per_token(chars_per_token(run.summary()))
        self.status_device.setText(f"device: {run.summary()['device']}")
        self._set_notes(warning="; ".join(f"Warning: {w}" for w in run.warnings()))   # stays for the whole run
        self._describe_run()
        if self.state == "preparing":
            self._set_state("running")
            # the progress bar's "preparing…" would stay until the first report, under a status that says training
            if run.trainer is not None:   # an n-gram counts, it has no steps
                self.panel.progress.setFormat("training: the first steps…")

    @Slot(list)
    def _on_reports(self, reports: list) -> None:
        if self._from_old_worker():
            return
        self.loss_plot.add_reports(reports)
        if self.run is not None:
            steps = self.run.snapshot_steps()
            if steps != self.loss_plot.kept_steps:   # the disk size stats every file: only when a step was kept
                self.loss_plot.set_kept_steps(steps, self.run.snapshot_disk_bytes())
            if any(e.val_loss is not None for e in reports):
                self.keeper.autosave(self.run)      # every evaluation: the run is never only in memory
        r = self.last_report = reports[-1]
        self.unsaved = self.unsaved or r.step != self._saved_step   # a final validation changes no weights
        self.panel.show_report(r, eta=self.state not in ("stopping", "validating"))
        self.status_step.setText(f"step {r.step:,}/{r.max_steps:,}")
        self.status_speed.setText(f"{r.tokens_per_s:,.0f} tok/s")
        self.status_eta.setText("ETA —" if r.eta_s is None or self.state in ("stopping", "validating")
                                else f"ETA {format_duration(r.eta_s)}")
        if self.state == "paused":
            self._show_paused()
        for e in reports:
            if e.message and e.event != "error":
                self._set_notes(note=e.message)
            if e.val_loss is not None:
                caveat = self.run.summary().get("val_bpc_note", "") if self.run is not None else ""
                self._set_notes(eval=f"step {e.step:,}: validation loss {e.val_loss:.4f} nats/token, "
                                     f"{e.val_bpc:.3f} bits/char, perplexity {e.val_ppl:,.2f} "
                                     f"({e.val_scope or 'whole split'})" + (f" ({caveat})" if caveat else ""))
                self.source.notify()
            if e.event == "done" and self.run is not None:
                self._describe_run()     # an n-gram's size is known once it has counted
            if e.event == "error":
                self._show_error(e.message)

    def _describe_run(self) -> None:
        s = self.run.summary()
        self._set_notes(about=f"{s['model']}: {s['params']:,} parameters, {s['tokenizer']} tokenizer with "
                              f"{s['vocab_size']:,} tokens, {s['train_tokens']:,} train / {s['val_tokens']:,} "
                              f"validation tokens")

    def _set_notes(self, **lines: str) -> None:
        """The run message label holds what the run is (about), the engine's latest remark (note: device, paused,
        finished) and the latest evaluation (eval), one line each; long ones wrap instead of widening the panel."""
        self._notes.update(lines)
        colors = {"error": "#b00020", "warning": WARN_COLOR}
        self.panel.message.setText("<br>".join(f"<span style='color:{colors[key]}'>{escape(t)}</span>"
                                               if key in colors else escape(t)
                                               for key, t in self._notes.items() if t))

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        if not self._from_old_worker():
            self._show_error(message)

    def _show_error(self, message: str) -> None:
        why = f"Training stopped: {message}" if self.run is not None else f"Could not start: {message}"
        self._set_notes(error=why,
                        note="The model so far can still be saved." if self.run is not None else "")
        self.statusBar().showMessage(f"error: {message}", 15000)
        self.state = "error"
        if self.run is None:   # it never started: nothing of "preparing…" or an earlier run's speed is true now
            self.panel.progress.setValue(0)
            self.panel.progress.setFormat("could not start")
            self.panel.speed.setText(" ")
            for label in (self.status_step, self.status_speed, self.status_eta):
                label.setText("")

    @Slot()
    def _on_finished(self) -> None:
        if self._from_old_worker():   # shutdown_run handled its end; this is the last of its signals
            self._retired = [w for w in self._retired if w is not self.sender()]
            return
        if self.thread is None:
            return
        if self.sender() is not self.worker:   # called by shutdown_run: the worker's finished is still queued
            self._retired.append(self.worker)
        self.thread.wait()
        self.thread, self.worker = None, None
        self.keeper.autosave(self.run, final=True)
        if self.state != "error":
            self._set_state("stopped" if self._stop_requested else "done")
        else:
            self._set_state("error")
        self.source.set_training(False)
        self._announce_end()

    def _announce_end(self) -> None:
        """The notice across the window and, when the window is not the active one, the platform's alert (a
        flashing taskbar entry): a run of minutes should not end unnoticed."""
        r = self.last_report
        at = f" at step {r.step:,} of {r.max_steps:,}" if r is not None else ""
        val = ""
        if self.run is not None and self.run.summary().get("val_loss") is not None:
            s = self.run.summary()
            val = (f"; validation loss {s['val_loss']:.4f} nats/token ({s['val_bpc']:.3f} bits/char, "
                   f"{s.get('val_scope', 'whole split')})")
        if self.state == "error":
            self.notice.show_notice("error", self._notes["error"] + (" The model so far can still be saved."
                                                                     if self.run is not None else ""))
        elif self.state == "stopped":
            self.notice.show_notice("stopped", f"Training stopped{at}{val}. Save checkpoint keeps the model.")
        else:
            self.notice.show_notice("done", f"Training finished{at}{val}.")
        QApplication.alert(self)

    def _set_state(self, state: str) -> None:
        self.state = state
        self.status_state.setText(STATE_TEXT[state])
        self.panel.set_state(state, can_save=self.run is not None and not self._saving,
                             can_continue=self.loaded is not None and self.loaded[1].get("family") != "ngram"
                             and "pretrained" not in self.loaded[1])   # a model trained elsewhere has no run to resume
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

    def shutdown_run(self) -> None:
        """Stop the worker and wait for it: the run stops after its current step, and a final validation pass
        is skipped (or cut short within one batch), so closing never waits for a pass over the whole split."""
        if self.thread is not None:
            self._stop_requested = True
            self.worker.skip_evaluation()
            self.worker.stop()
            self.thread.wait()
            self._on_finished()
        self.keeper.finish_quietly()   # an autosave under way ends before the window can go


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
    """Whether two corpus specs name the same corpus: a checkpoint records the path as typed (relative, say
    "../shared/corpora/x.txt"), the loaded corpus reports it absolute; built-in names compare as text."""
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
