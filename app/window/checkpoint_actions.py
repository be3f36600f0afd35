"""The main window's checkpoint commands, Save and Load, kept apart from the run control in main_window.py.
`CheckpointActions` is mixed into MainWindow and uses its run, form, plot, ModelSource and JobRunner. The Save
button (and Save when closing) writes on a worker thread; loading still reads the checkpoint on the GUI thread."""
from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Slot
from PySide6.QtWidgets import QFileDialog, QMessageBox

from engine import api
from engine.errors import PlaygroundError
from engine.history import LossHistory

from app.common.workers import error_message
from app.training.model_form import checkpoint_eval_line, checkpoint_settings


class CheckpointActions:
    # -- checkpoints -----------------------------------------------------------------------------------------
    def ask_save_path(self) -> str:
        """The folder to save the run in ("" when the dialog is cancelled). Tests replace this method."""
        step = self.last_report.step if self.last_report is not None else 0
        default = f"runs/{self.run.spec.family}-step{step}-{time.strftime('%Y%m%d-%H%M%S')}"
        path, _ = QFileDialog.getSaveFileName(self, "Save checkpoint (a folder)", default)
        return path

    @Slot()
    def save_checkpoint(self, path: str | None = None) -> Path | None:
        """Save here and now, on this thread (for callers that need the result at once); the Save button and
        closing with Save use save_in_background."""
        if self.run is None:
            return None
        path = path or self.ask_save_path()
        if not path:
            return None
        try:
            out = self.run.save(path)
        except (PlaygroundError, OSError) as e:
            self._save_failed(error_message(e))
            return None
        self._saved(self.last_report.step if self.last_report is not None else None, out)
        return out

    @Slot()
    def save_in_background(self, then=None) -> bool:
        """Ask for a folder, then write the checkpoint on a worker thread: a 10M-parameter model with its AdamW
        moments is over 100 MB and took ~0.3 s, a frozen window, on the GUI thread. `then()` runs once it is
        saved. False when nothing was started (no run, a save already running, the dialog cancelled)."""
        if self.run is None or self._saving:
            return False
        path = self.ask_save_path()
        if not path:
            return False
        run, step = self.run, self.last_report.step if self.last_report is not None else None
        self._saving = True
        self.panel.save_button.setEnabled(False)
        self.statusBar().showMessage(f"saving checkpoint to {path}…")

        def done(out: Path) -> None:
            self._save_ended()
            if run is self.run:
                self._saved(step, out)
            if then is not None:
                then()
            elif self._close_when_saved:
                self.close()

        def failed(message: str) -> None:
            self._save_ended()
            self._close_when_saved = False   # the window stays, saying why the save failed
            self._save_failed(message)
        self.jobs.run(lambda: run.save(path), done, failed)
        return True

    def _save_ended(self) -> None:
        self._saving = False
        self._set_state(self.state)   # Save back as the state allows

    def _saved(self, step: int | None, out: Path) -> None:
        """step: the run's step when the save began (a run that trained on meanwhile is still unsaved)."""
        self._saved_step = step
        self.unsaved = self.last_report is not None and self.last_report.step != step
        if self._notes["error"].startswith("Could not"):
            self._set_notes(error="")
        self.statusBar().showMessage(f"saved checkpoint to {out}", 10000)

    def _save_failed(self, message: str) -> None:
        self.statusBar().clearMessage()
        self._set_notes(error=f"Could not save: {message}")

    @Slot()
    def load_checkpoint(self, path: str | None = None) -> bool:
        """Make the checkpoint the window's model: the form shows its settings, the loss plot and progress start
        from it, Save is off (the run it came from is gone; the checkpoint is already on disk) and Resume trains
        it further. An unsaved run is offered for saving first, since loading replaces it."""
        if self.thread is not None:
            return False
        path = path or self.ask_load_path()
        if not path:
            return False
        try:
            handle = api.load_checkpoint(path)
        except (PlaygroundError, OSError) as e:
            self._load_failed(error_message(e))
            return False
        return self.show_checkpoint(path, handle)

    def ask_load_path(self) -> str:
        """The checkpoint folder to load ("" when the dialog is cancelled). Tests replace this method."""
        return QFileDialog.getExistingDirectory(self, "Load checkpoint folder", "runs")

    @Slot()
    def load_in_background(self) -> bool:
        """The Load button: ask for a folder, read the checkpoint on a worker thread (weights of a large model are
        hundreds of MB), then show it. False when nothing was started."""
        if self.thread is not None or self._loading:
            return False
        path = self.ask_load_path()
        if not path:
            return False
        self._loading = True
        self.panel.load_button.setEnabled(False)
        self.statusBar().showMessage(f"loading checkpoint {path}…")

        def done(handle) -> None:
            self._load_ended()
            if self.thread is None:   # a run started meanwhile would be replaced
                self.show_checkpoint(path, handle)

        def failed(message: str) -> None:
            self._load_ended()
            self._load_failed(message)
        self.jobs.run(lambda: api.load_checkpoint(path), done, failed)
        return True

    def _load_ended(self) -> None:
        self._loading = False
        self.statusBar().clearMessage()
        self._set_state(self.state)

    def _load_failed(self, message: str) -> None:
        self._set_notes(error=f"Could not load: {message}")   # what is on screen stays described

    def show_checkpoint(self, path: str, handle) -> bool:
        """Make a read checkpoint the window's model (see load_checkpoint); False when the user keeps the run."""
        if self.run is not None and self.unsaved:
            answer = self.ask_save_before_load()
            if answer == QMessageBox.Cancel or (answer == QMessageBox.Save and self.save_checkpoint() is None):
                return False
        meta = handle.meta
        corpus = meta.get("spec", {}).get("corpus")
        if corpus and corpus != self.panel.corpus_box.spec():
            self.panel.corpus_box.load(corpus)   # in the background; _on_corpus_loaded/_failed finish the job
        self.panel.apply_settings(checkpoint_settings(meta))
        self.run, self.last_report, self.unsaved, self.loaded = None, None, False, (path, meta)
        self._new_plot(meta.get("spec", {}), f"checkpoint {Path(path).name}")
        step = int(meta.get("step", meta.get("summary", {}).get("step", 0)) or 0)
        max_steps = int(meta.get("train", {}).get("max_steps", step) or step)
        self.loss_plot.add_reports(LossHistory.from_dict(meta.get("history")).reports(max_steps))
        self.source.set_checkpoint(handle, path, self.panel.corpus_box.validation_text())
        self.panel.progress.setMaximum(max(max_steps, 1))
        self.panel.progress.setValue(min(step, max_steps))
        self.panel.progress.setFormat(f"checkpoint at step {step:,} / {max_steps:,}")
        self.panel.speed.setText(" ")
        self.status_step.setText(f"step {step:,}")
        self.status_speed.setText("")
        self.status_eta.setText("ETA —")
        further = "Resume trains it further, up to max_steps" + (f" (above {step:,})." if step >= max_steps else ".")
        self._set_notes(error="", about=self.source.describe(), eval=checkpoint_eval_line(meta),
                        note=further if meta.get("family") != "ngram" else "")
        self._set_state("loaded")
        self.statusBar().showMessage(f"loaded checkpoint {path}", 10000)
        return True

    def ask_save_before_load(self) -> QMessageBox.StandardButton:
        """Save, Discard or Cancel. Tests replace this method to answer without a dialog."""
        return QMessageBox.question(self, "Save the model?",
                                    "Loading a checkpoint replaces the current run, which has not been saved. "
                                    "Save it first?",
                                    QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel, QMessageBox.Save)
